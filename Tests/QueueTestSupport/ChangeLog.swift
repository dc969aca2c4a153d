// How tests wait for the change notifications of migration 0010: a log of what a ChangeListener reported,
// and a fence that proves every change committed before it has been heard. Nothing waits for time to pass.
import Foundation
import JobQueue
import TestSupport

/// What a `ChangeListener` reported, in order, for a test to wait on. Thread-safe: the listener records
/// on its own thread.
public final class ChangeLog: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var changes: [StoreChange] = []

    public init() {}

    public func record(_ change: StoreChange) {
        condition.withLock {
            changes.append(change)
            condition.broadcast()
        }
    }

    /// How many changes were reported so far: a mark for `since` and `wait(for:after:)`.
    public var count: Int { condition.withLock { changes.count } }

    public func since(_ mark: Int) -> [StoreChange] { condition.withLock { Array(changes[mark...]) } }

    /// Blocks until `change` is reported at or after position `mark`; false at `JobWatch.hangGuard`, which a
    /// working listener never reaches.
    @discardableResult
    public func wait(for change: StoreChange, after mark: Int = 0) -> Bool {
        let deadline = Date(timeIntervalSinceNow: JobWatch.hangGuard)
        return condition.withLock {
            while !changes[mark...].contains(change) {
                if !condition.wait(until: deadline) { return false }
            }
            return true
        }
    }

    /// Sends a notification no trigger sends (a job id that exists nowhere) on the database at `url` and
    /// waits until it is reported: PostgreSQL delivers notifications in commit order, so by then every
    /// change committed before has been reported too (and taken in by whatever the listener feeds first).
    public func fence(_ url: String) throws {
        let marker = UUID()
        let mark = count
        try TestDatabase.psql(url, "SELECT pg_notify('dynstereo_job_changes', '\(marker.uuidString)')")
        guard wait(for: .job(marker), after: mark) else {
            throw JobWatchError(description: "the fence notification \(marker) never arrived")
        }
    }
}
