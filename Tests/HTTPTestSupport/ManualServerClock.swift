// Time and events the HTTP tests control: a server clock that moves only when a test says so, and a log of
// what the server's loop did, so that a test waits for the event it expects rather than for seconds to pass.
import Foundation
import HTTPTransport

/// How long a wait for the server may take before the test calls the server broken. It only keeps a broken
/// server from hanging the run; nothing passes or fails on it while the server works.
public let hangGuardSeconds = 60.0

/// Runs `body`, a blocking wait such as `HTTPServer.wait()`, on another thread and waits for it to return.
/// False only if it never does (a hung server).
public func returns(_ body: @escaping @Sendable () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        body()
        done.signal()
    }
    return done.wait(timeout: .now() + hangGuardSeconds) == .success
}

/// A `ServerClock` that stands still until `advance(by:)`. The loop never sleeps on it for a timeout: it
/// waits for I/O or for `advance`, which wakes it.
public final class ManualServerClock: ServerClock, @unchecked Sendable {
    private let condition = NSCondition()
    private var time: Double
    private var wakeLoop: (@Sendable () -> Void)?
    /// The latest time at which the loop reported having acted on every due timeout.
    private var actedAt = -Double.infinity

    public init(start: Double = 1000) {
        time = start
    }

    public func now() -> Double {
        condition.lock()
        defer { condition.unlock() }
        return time
    }

    public func pollTimeout(now: Double, deadline: Double?) -> Int32 {
        condition.lock()
        actedAt = max(actedAt, now)
        condition.broadcast()
        condition.unlock()
        return -1
    }

    public func attach(wake: @escaping @Sendable () -> Void) {
        condition.lock()
        wakeLoop = wake
        actedAt = -.infinity
        condition.unlock()
    }

    public func detach() {
        condition.lock()
        wakeLoop = nil
        condition.broadcast()
        condition.unlock()
    }

    /// Moves the time on by `seconds` and returns once the server's loop has acted on every timeout due at
    /// the new time (or has stopped). False only if the loop never got there (a hung server).
    @discardableResult
    public func advance(by seconds: Double) -> Bool {
        condition.lock()
        time += seconds
        let target = time
        let wake = wakeLoop
        condition.unlock()
        wake?()
        condition.lock()
        defer { condition.unlock() }
        let guardTime = Date(timeIntervalSinceNow: hangGuardSeconds)
        while wakeLoop != nil && actedAt < target {
            if !condition.wait(until: guardTime) { return false }
        }
        return true
    }
}

/// Every `HTTPServerEvent` a server reported, in order; pass `record` as the server's `events`.
public final class ServerEventLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var events: [HTTPServerEvent] = []

    public init() {}

    public var record: @Sendable (HTTPServerEvent) -> Void {
        { [self] event in
            condition.lock()
            events.append(event)
            condition.broadcast()
            condition.unlock()
        }
    }

    public var all: [HTTPServerEvent] {
        condition.lock()
        defer { condition.unlock() }
        return events
    }

    /// Blocks until an event matching `predicate` has been reported (now or earlier). False only if none
    /// comes at all (a hung server).
    public func wait(for predicate: (HTTPServerEvent) -> Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let guardTime = Date(timeIntervalSinceNow: hangGuardSeconds)
        // Each event is looked at once, however many arrive while waiting.
        var checked = 0
        while true {
            if events[checked...].contains(where: predicate) { return true }
            checked = events.count
            if !condition.wait(until: guardTime) { return false }
        }
    }

    public func wait(for event: HTTPServerEvent) -> Bool { wait { $0 == event } }

    /// Until the server has accepted `client`'s connection (its idle timeout then runs).
    public func waitUntilAccepted(_ client: RawClient) -> Bool { wait(for: .accepted(peer: client.localAddress)) }

    /// Until the server has read and acted on at least `bytes` bytes from `client`.
    public func waitUntilReceived(_ client: RawClient, bytes: Int) -> Bool {
        let peer = client.localAddress
        return wait { event in
            if case let .received(from, total) = event { return from == peer && total >= bytes }
            return false
        }
    }

    /// Until the server has closed `client`'s connection, or noticed that the client closed it.
    public func waitUntilClosed(peer: String) -> Bool { wait(for: .closed(peer: peer)) }
}
