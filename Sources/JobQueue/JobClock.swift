// The time the queue's statements and the worker's timers run on: the real one in service, one a test moves.
import Foundation

/// Where the queue and the worker read the time, and how they wait for it to pass.
///
/// Every statement of the queue that needs "now" binds `statementTime` as
/// `coalesce($n::timestamptz, now())` (river's way): nil lets PostgreSQL's clock decide, one clock for every
/// machine of a deployment; a date makes the statement run at that time. The worker's timers (heartbeats,
/// polling, the lease reaper, retention, reconnection backoff) compare `now()` and wait with `wait`.
public protocol JobClock: AnyObject, Sendable {
    /// The time bound into statements, or nil for the database's `now()`.
    var statementTime: Date? { get }
    /// The time the worker's timers compare against.
    func now() -> Date
    /// Called with `condition` locked: waits until `deadline` has passed on this clock or the condition is
    /// signalled, whichever comes first (callers re-check what they wait for, as with any condition wait).
    /// Returns true when the deadline has passed.
    @discardableResult
    func wait(_ condition: NSCondition, until deadline: Date) -> Bool
}

extension JobClock {
    /// `wait(_:until:)` `seconds` from now.
    @discardableResult
    public func wait(_ condition: NSCondition, seconds: Double) -> Bool {
        wait(condition, until: now().addingTimeInterval(seconds))
    }
}

/// The real time: statements use PostgreSQL's `now()`, timers the machine's clock.
public final class SystemClock: JobClock {
    /// One instance serves every caller: it has no state.
    public static let shared = SystemClock()

    public init() {}

    public var statementTime: Date? { nil }
    public func now() -> Date { Date() }

    public func wait(_ condition: NSCondition, until deadline: Date) -> Bool {
        !condition.wait(until: deadline)
    }
}

/// A clock that stands still until `advance(by:)` moves it, for tests and simulations: the statements run at
/// its time, and a timer fires exactly when the clock is moved past its deadline, however loaded the machine.
public final class ManualClock: JobClock, @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var current: Date
    /// The conditions threads are waiting on, with how many threads wait on each.
    private var waiting: [ObjectIdentifier: (condition: NSCondition, waiters: Int)] = [:]

    /// Starts at `start`, by default the present to the microsecond (what PostgreSQL stores), so that rows
    /// written with the database's own clock and rows written with this one compare sensibly.
    public init(start: Date = ManualClock.microseconds(Date())) {
        current = start
    }

    /// `date` rounded to whole microseconds.
    public static func microseconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
    }

    public var statementTime: Date? { now() }
    public func now() -> Date { lock.withLock { current } }

    /// Moves the clock on and wakes every thread waiting on it, which then sees whether its deadline passed.
    public func advance(by seconds: Double) {
        precondition(seconds >= 0, "a clock does not run backwards")
        let conditions = lock.withLock { () -> [NSCondition] in
            current = current.addingTimeInterval(seconds)
            return waiting.values.map(\.condition)
        }
        // Taking each condition's lock means a waiter that read the old time is already inside `wait()`, so
        // this broadcast reaches it.
        for condition in conditions {
            condition.lock()
            condition.broadcast()
            condition.unlock()
        }
    }

    public func wait(_ condition: NSCondition, until deadline: Date) -> Bool {
        let key = ObjectIdentifier(condition)
        // Registered before the time is read, so an `advance` after the read finds this waiter.
        let passed = lock.withLock { () -> Bool in
            waiting[key, default: (condition, 0)].waiters += 1
            return current >= deadline
        }
        defer {
            lock.withLock {
                waiting[key]?.waiters -= 1
                if waiting[key]?.waiters == 0 { waiting[key] = nil }
            }
        }
        if passed { return true }
        condition.wait()
        return now() >= deadline
    }
}
