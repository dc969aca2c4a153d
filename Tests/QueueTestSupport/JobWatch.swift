// How tests wait for a job: at every change of its row (a trigger in the test's schema NOTIFYs), never for
// time to pass. Shared by the worker tests (reading through JobStore) and the CLI end-to-end test (over HTTP).
import CLibPQ
import Foundation
import JobQueue
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a `JobWatch` wait ends with when the awaited state never comes or the database cannot be heard.
public struct JobWatchError: Error, CustomStringConvertible {
    public let description: String
}

/// Reads a job back each time its row changes: a trigger in the test's schema NOTIFYs a channel named after
/// the schema on every insert, update and delete of `jobs`, and a session of its own LISTENs to it. A
/// session lost (a test restarting its private server) is opened again.
///
/// Talks to libpq directly rather than through JobQueue's connection type, which is internal: a
/// `@testable import` here would break `swift build -c release`, which builds this target too.
public final class JobWatch {
    /// How long a wait may take before the test fails instead of hanging. Never reached when the code
    /// works, so it bounds nothing a test asserts; it only turns a hang into a failure.
    public static let hangGuard: Double = 180

    private let url: String
    private let channel: String
    private var handle: OpaquePointer?

    /// Installs the trigger (the `jobs` table must exist: migrate first) and starts listening.
    public init(url: String, schema: String) throws {
        self.url = url
        channel = schema
        // `schema` comes from TestDatabase.makeSchema, [a-z0-9_] only, so it is spliced without quoting.
        try TestDatabase.psql(url, """
            CREATE OR REPLACE FUNCTION notify_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN PERFORM pg_notify('\(schema)', OLD.id::text);
                ELSE PERFORM pg_notify('\(schema)', NEW.id::text); END IF;
                RETURN NULL;
            END $$;
            DROP TRIGGER IF EXISTS job_change ON jobs;
            CREATE TRIGGER job_change AFTER INSERT OR UPDATE OR DELETE ON jobs
                FOR EACH ROW EXECUTE FUNCTION notify_job_change();
            """)
        try listen()
    }

    deinit { PQfinish(handle) }

    /// The value `read` returns once `predicate` holds for it, read again at every notification; throws at
    /// the hang guard. The subscription comes before every read, so a change committed after a read is
    /// always notified.
    @discardableResult
    public func wait<Value>(hangGuard: Double = JobWatch.hangGuard, reading read: () throws -> Value,
                            until predicate: (Value) -> Bool) throws -> Value {
        let deadline = Date(timeIntervalSinceNow: hangGuard)
        while true {
            let value = try read()
            if predicate(value) { return value }
            guard try waitForNotification(until: deadline) else {
                throw JobWatchError(description: "the awaited state never came within the hang guard; last seen \(value)")
            }
        }
    }

    /// The job once `predicate` holds for it, read through `store` at every change of its row.
    @discardableResult
    public func wait(for id: UUID, _ store: JobStore, until predicate: (JobRecord) -> Bool) throws -> JobRecord {
        do {
            return try wait(reading: {
                guard let job = try store.job(id: id) else { throw JobWatchError(description: "job \(id) is gone") }
                return job
            }, until: predicate)
        } catch let error as JobWatchError {
            throw JobWatchError(description: "job \(id): \(error.description)")
        }
    }

    private func listen() throws {
        PQfinish(handle)
        handle = PQconnectdb(url)
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw JobWatchError(description: "cannot listen at \(url): \(errorMessage)")
        }
        // The server's farewell on a restart would go to stderr as a notice; losing the session is expected.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        let result = PQexec(handle, "LISTEN \(channel)")
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else {
            throw JobWatchError(description: "LISTEN \(channel) failed: \(errorMessage)")
        }
    }

    private var errorMessage: String { handle.flatMap { PQerrorMessage($0) }.map { String(cString: $0) } ?? "out of memory" }

    /// Blocks until a notification arrives (true) or the deadline passes (false). A session found dead is
    /// replaced, and that counts as a notification: a change may have come while no one listened.
    private func waitForNotification(until deadline: Date) throws -> Bool {
        while true {
            guard let handle, PQstatus(handle) == CONNECTION_OK else {
                try listen()
                return true
            }
            if drainNotifications(handle) { return true }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, 3600) * 1000) + 1)
            if ready < 0 && errno != EINTR { throw JobWatchError(description: "poll failed: errno \(errno)") }
            // Input (or the end of the stream): read it; a failure marks the session dead for the next turn.
            if ready > 0 && PQconsumeInput(handle) == 0 { PQfinish(handle); self.handle = nil }
        }
    }

    /// Consumes every notification libpq has read; whether there was one.
    private func drainNotifications(_ handle: OpaquePointer) -> Bool {
        var any = false
        while let notice = PQnotifies(handle) {
            any = true
            PQfreemem(notice)
        }
        return any
    }
}
