// The change notifications of migration 0010, heard on a LISTEN session of its own: what tells an API
// server's memory (`NotifiedCache`) that a job or the API keys changed, whichever process wrote them.
import Foundation
import Logging

/// What a `ChangeListener` reports.
public enum StoreChange: Equatable, Sendable {
    /// The session LISTENs (the first time, or again after a loss): notifications are heard from now on, and
    /// whatever changed before was not announced to this process.
    case listening
    /// The session is gone: changes may go unheard until the next `listening`.
    case lost
    /// The job's row or one of its windows was written (the job may be of another schema of the database).
    case job(UUID)
    /// An API key was created, revoked or deleted.
    case keys
}

/// A thread that holds one PostgreSQL session LISTENing on the change channels and reports every
/// notification, reconnecting with backoff (on `clock`) after a loss. The session must be a direct one: a
/// transaction-pooling PgBouncer does not keep a LISTEN. A session that ends cleanly (a terminated backend, a
/// restart) is noticed at once; one that dies silently within the TCP timeouts of `PostgresConnection`
/// (about a minute), since the session is pinged after every quiet second.
public final class ChangeListener: @unchecked Sendable {
    private let url: String
    private let clock: JobClock
    private let reconnectMin: Double
    private let reconnectMax: Double
    private let logger: Logger
    private let report: @Sendable (StoreChange) -> Void
    /// Raised by `stop`, which ends the session's wait at once.
    private let stopSignal: StopSignal
    private let state = NSCondition()
    // Guarded by `state`.
    private var stopping = false
    private var running = false
    private var pid: Int32?

    /// `report` is called on the listener's thread, in order: `.listening` first, then the changes, `.lost`
    /// when the session goes (and at `stop`), `.listening` again once it is back. Throws
    /// `StopSignal.Unavailable` when the process is out of file descriptors.
    public init(url: String, clock: JobClock = SystemClock.shared, reconnectMin: Double = 0.1, reconnectMax: Double = 5,
                logger: Logger = Logger(label: "dynstereo.changes"), report: @escaping @Sendable (StoreChange) -> Void) throws {
        precondition(reconnectMin > 0 && reconnectMax >= reconnectMin, "a reconnection backoff is positive and bounded")
        self.url = url
        self.clock = clock
        self.reconnectMin = reconnectMin
        self.reconnectMax = reconnectMax
        self.logger = logger
        self.report = report
        stopSignal = try StopSignal()
    }

    /// The server process of the LISTEN session (`pg_stat_activity.pid`); nil while it is not listening.
    public var backendPID: Int32? { state.withLock { pid } }

    /// Starts the thread; the first `.listening` follows once the session LISTENs.
    public func start() {
        state.withLock {
            precondition(!running, "a listener starts once")
            running = true
        }
        let thread = Thread { [self] in run() }
        thread.name = "dynstereo-changes"
        thread.start()
    }

    /// Ends the session and the thread, reporting `.lost` if it was listening; returns once the thread is done.
    public func stop() {
        state.withLock { stopping = true; state.broadcast() }
        stopSignal.raise()
        state.withLock { while running { state.wait() } }
    }

    private var isStopping: Bool { state.withLock { stopping } }

    private func run() {
        var delay = reconnectMin
        while !isStopping {
            var listened = false
            do {
                let connection = try PostgresConnection(url: url)
                try connection.executeScript(Queries.listenForChanges, name: "listen for changes")
                state.withLock { pid = connection.backendPID }
                listened = true
                logger.info("change notifications heard", metadata: ["pid": "\(connection.backendPID)"])
                report(.listening)
                delay = reconnectMin
                while !isStopping {
                    let notices = try connection.waitForNotices(timeout: 1, interrupt: stopSignal.descriptor)
                    if notices.isEmpty {
                        // A quiet second: a round trip proves the session still stands.
                        if !isStopping { try connection.execute(Queries.ping) }
                        continue
                    }
                    for notice in notices {
                        if let change = Self.change(channel: notice.channel, payload: notice.payload) { report(change) }
                    }
                }
            } catch {
                logger.warning("change notifications lost the database; retrying",
                               metadata: ["error": "\(error)", "delay": "\(delay)"])
            }
            state.withLock { pid = nil }
            // The backoff's end is fixed before `.lost` is reported: a clock moved on by whoever heard the loss
            // then always reaches it.
            let retryAt = clock.now().addingTimeInterval(delay)
            if listened { report(.lost) }
            guard waitOnClock(until: retryAt) else { break }
            delay = min(reconnectMax, delay * 2)
        }
        state.withLock { running = false; state.broadcast() }
    }

    /// Waits until `deadline` on the clock, ending early at a stop; false when stopping.
    private func waitOnClock(until deadline: Date) -> Bool {
        state.withLock {
            while !stopping && clock.now() < deadline { clock.wait(state, until: deadline) }
            return !stopping
        }
    }

    /// A notification as a change; nil for a payload no trigger sends.
    static func change(channel: String, payload: String) -> StoreChange? {
        switch channel {
        case Queries.jobChangesChannel: return UUID(uuidString: payload).map(StoreChange.job)
        case Queries.keyChangesChannel: return .keys
        default: return nil
        }
    }
}
