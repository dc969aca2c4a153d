// How the worker tests wait: for a job's row to change (a trigger NOTIFYs), for a worker event, or for the
// fake network to reach a frame. Never for time to pass.
import Foundation
@testable import JobQueue
import TestSupport
import Worker
import XCTest

/// How long a wait may take before the test fails instead of hanging. Never reached when the code works, so
/// it bounds nothing a test asserts; it only turns a hang into a failure.
let hangGuard: Double = 180

/// Reads a job back each time its row changes, never by sleeping: a trigger in the test's schema NOTIFYs a
/// channel named after the schema on every update of `jobs`, and this session LISTENs to it. A session lost
/// (a test restarting its private server) is opened again.
final class JobWatch {
    private let url: String
    private let channel: String
    private var connection: PostgresConnection

    init(url: String, schema: String) throws {
        self.url = url
        channel = schema
        try TestDatabase.psql(url, """
            CREATE OR REPLACE FUNCTION notify_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('\(schema)', NEW.id::text); RETURN NULL; END $$;
            DROP TRIGGER IF EXISTS job_change ON jobs;
            CREATE TRIGGER job_change AFTER UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION notify_job_change();
            """)
        connection = try Self.listen(url, channel)
    }

    private static func listen(_ url: String, _ channel: String) throws -> PostgresConnection {
        let connection = try PostgresConnection(url: url)
        try connection.executeScript("LISTEN \(channel)", name: "listen")
        return connection
    }

    /// The job once `predicate` holds for it; fails the test at the hang guard. The subscription comes
    /// before every read, so a change committed after a read is always notified.
    @discardableResult
    func wait(for id: UUID, _ store: JobStore, file: StaticString = #filePath, line: UInt = #line,
              until predicate: (JobRecord) -> Bool) throws -> JobRecord {
        let deadline = Date(timeIntervalSinceNow: hangGuard)
        while true {
            let job = try XCTUnwrap(try store.job(id: id), file: file, line: line)
            if predicate(job) { return job }
            guard Date() < deadline else {
                XCTFail("job \(id) never reached the awaited state; last seen \(job.status)", file: file, line: line)
                return job
            }
            do {
                // Returns at the first notification; the timeout only lets the hang guard be checked.
                _ = try connection.waitForNotifications(timeout: 1)
            } catch let error as PostgresError where error.isConnectionLoss {
                connection = try Self.listen(url, channel)
            }
        }
    }
}

/// Every event a worker reported, in order, which a test can wait on.
final class EventLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var events: [WorkerEvent] = []

    /// The observer to hand to `QueueWorker`.
    var observer: @Sendable (WorkerEvent) -> Void {
        { [self] event in
            condition.withLock {
                events.append(event)
                condition.broadcast()
            }
        }
    }

    /// Events so far: pass it as `after` to wait only for what comes next.
    var count: Int { condition.withLock { events.count } }
    var all: [WorkerEvent] { condition.withLock { events } }

    /// The index of the first event at or after `after` that satisfies `predicate`, waiting for it; nil
    /// (and a failure) at the hang guard.
    @discardableResult
    func wait(after: Int = 0, file: StaticString = #filePath, line: UInt = #line,
              for predicate: (WorkerEvent) -> Bool) -> Int? {
        let deadline = Date(timeIntervalSinceNow: hangGuard)
        return condition.withLock {
            var next = after
            while true {
                while next < events.count {
                    if predicate(events[next]) { return next }
                    next += 1
                }
                guard condition.wait(until: deadline) else {
                    XCTFail("the awaited worker event never came; seen \(events)", file: file, line: line)
                    return nil
                }
            }
        }
    }
}

/// Holds a processor before one frame until the test lets it go, and tells the test when it got there.
final class FrameGate: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var holdAt: Int?
    private var held = false

    init(holdAt: Int?) {
        self.holdAt = holdAt
    }

    /// Called by the processor before frame `index`. At the held frame it waits until `release()`, or
    /// throws `CancellationError` once `isCancelled` says so, which it checks between short waits as the
    /// network checks between its iterations.
    func pass(_ index: Int, isCancelled: () -> Bool) throws {
        try condition.withLock {
            guard index == holdAt else { return }
            held = true
            condition.broadcast()
            defer { held = false }
            while holdAt == index {
                if isCancelled() { throw CancellationError() }
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.01))
            }
        }
    }

    /// Waits until the processor stands at the held frame; false (and a failure) at the hang guard.
    @discardableResult
    func waitUntilHeld(file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let deadline = Date(timeIntervalSinceNow: hangGuard)
        return condition.withLock {
            while !held {
                guard condition.wait(until: deadline) else {
                    XCTFail("the processor never reached the held frame", file: file, line: line)
                    return false
                }
            }
            return true
        }
    }

    func release() {
        condition.withLock {
            holdAt = nil
            condition.broadcast()
        }
    }
}
