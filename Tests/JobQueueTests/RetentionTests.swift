// Retention against a real PostgreSQL: finished jobs past the age lose their inputs and results in small
// batches, keep their rows and status, and rows another transaction holds are skipped, not waited for.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class RetentionTests: QueueTestCase {
    private let week = 7.0 * 86_400

    private func count(_ sql: String) throws -> Int { Int(try TestDatabase.psql(url, sql)) ?? -1 }

    /// Ages a job as if it finished `days` ago (created a little before).
    private func age(_ id: UUID, days: Double) throws {
        try TestDatabase.psql(url, """
            UPDATE jobs SET finished_at = now() - make_interval(secs => \(days * 86_400)),
                            created_at = now() - make_interval(secs => \(days * 86_400 + 60))
            WHERE id = '\(id.uuidString)'
            """)
    }

    /// Claims the oldest queued job and ends it the way `outcome` says, storing one result when it succeeds.
    private func finishNext(_ outcome: JobStatus) throws -> UUID {
        let queue = WorkerQueue(url: url)
        let window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        switch outcome {
        case .succeeded:
            XCTAssertTrue(try queue.succeed(window, frames: results(window)))
            XCTAssertTrue(try queue.finish(try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))))
        case .failed: XCTAssertTrue(try queue.fail(window, error: JobErrorInfo(code: "bad_input", message: "not a PNG")))
        case .cancelled:
            _ = try JobStore(url: url).cancel(id: window.jobId)
            XCTAssertTrue(try queue.markCancelled(window))
        default: XCTFail("not a terminal outcome: \(outcome)")
        }
        XCTAssertEqual(try JobStore(url: url).job(id: window.jobId)?.status, outcome)
        return window.jobId
    }

    func testOldFinishedJobsLoseInputsAndResultsInBatchesAndKeepTheirRows() throws {
        let store = try JobStore(url: url)
        // Seven finished long ago (more than two batches of three), one finished recently, one queued and
        // one running: only the seven expire.
        var old: [UUID] = []
        for outcome in [JobStatus.succeeded, .failed, .cancelled, .succeeded, .succeeded, .failed, .succeeded] {
            _ = try enqueue(store)
            old.append(try finishNext(outcome))
        }
        _ = try enqueue(store)
        let recent = try finishNext(.succeeded)
        let queued = try enqueue(store).id
        _ = try enqueue(store)
        let running = try XCTUnwrap(try WorkerQueue(url: url).claim(workerId: "w2", leaseSeconds: 30)).jobId
        XCTAssertEqual(running, queued, "the oldest queued job is claimed")
        let stillQueued = try XCTUnwrap(try store.list(status: .queued, limit: 10, after: nil).jobs.first).id
        for id in old { try age(id, days: 8) }
        try age(recent, days: 6)
        try TestDatabase.psql(url, "UPDATE jobs SET created_at = now() - interval '30 days' WHERE status IN ('queued', 'running')")

        let before = try Dictionary(uniqueKeysWithValues: old.map { ($0, try XCTUnwrap(try store.job(id: $0))) })
        let expired = try WorkerQueue(url: url).expireResults(olderThan: week, batchSize: 3)
        XCTAssertEqual(Set(expired), Set(old), "every old finished job, across three batches")
        XCTAssertEqual(expired.count, old.count, "each once")

        let oldList = old.map { "'\($0.uuidString)'" }.joined(separator: ", ")
        XCTAssertEqual(try count("SELECT count(*) FROM job_inputs WHERE job_id IN (\(oldList))"), 0)
        XCTAssertEqual(try count("SELECT count(*) FROM job_frames WHERE job_id IN (\(oldList))"), 0)
        XCTAssertEqual(try count("SELECT count(*) FROM job_inputs WHERE job_id NOT IN (\(oldList))"), 6, "3 jobs × 2 frames kept")
        XCTAssertEqual(try count("SELECT count(*) FROM job_frames WHERE job_id = '\(recent.uuidString)'"), 2)
        for id in old {
            let job = try XCTUnwrap(try store.job(id: id), "the row stays")
            XCTAssertNotNil(job.resultsExpiredAt)
            XCTAssertEqual(job.status, before[id]?.status, "the status stays")
            XCTAssertEqual(job.error, before[id]?.error, "the error stays")
            XCTAssertEqual(job.finishedAt, before[id]?.finishedAt)
            XCTAssertEqual(try store.resultPaths(id: id), [])
        }
        for id in [recent, running, stillQueued] { XCTAssertNil(try store.job(id: id)?.resultsExpiredAt, "\(id)") }
        XCTAssertEqual(try store.job(id: running)?.status, .running)
        XCTAssertEqual(try WorkerQueue(url: url).expireResults(olderThan: week, batchSize: 3), [], "a second pass finds nothing")
    }

    func testRowsLockedElsewhereAreSkippedNotWaitedFor() throws {
        let store = try JobStore(url: url)
        var ids: [UUID] = []
        for _ in 0..<3 {
            _ = try enqueue(store)
            ids.append(try finishNext(.succeeded))
        }
        for id in ids { try age(id, days: 10) }
        // Another session holds the first job's row, as a concurrent batch or an API delete would.
        let holder = try PostgresConnection(url: url)
        try holder.execute(Queries.begin)
        try holder.execute(Query(name: "hold", sql: "SELECT id FROM jobs WHERE id = $1 FOR UPDATE"), [.uuid(ids[0])])
        // The pass runs while the holder keeps its lock: if it waited for the row it would never return
        // before the rollback below, and the hang guard would fail the test.
        let done = DispatchSemaphore(value: 0)
        let pass = LockedArray<Result<[UUID], Error>>()
        let (url, week) = (self.url, self.week)
        Thread {
            pass.append(Result { try WorkerQueue(url: url).expireResults(olderThan: week, batchSize: 1) })
            done.signal()
        }.start()
        let returned = done.wait(timeout: .now() + 180) == .success
        XCTAssertTrue(returned, "no wait on the held row")
        try holder.execute(Queries.rollback)
        if !returned { done.wait() }
        XCTAssertEqual(Set(try XCTUnwrap(pass.values.first).get()), Set(ids[1...]))
        XCTAssertEqual(try WorkerQueue(url: url).expireResults(olderThan: week), [ids[0]], "taken on the next pass")
    }

    /// A long video's data goes in batches of rows: a pass stopped part-way has expired the job (its routes
    /// answer 410) and deleted some rows; the next pass deletes the rest.
    func testALongVideoIsDeletedInBatchesOfRowsAcrossPasses() throws {
        let store = try JobStore(url: url)
        let job = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 10), frames: frames(100),
                                    idempotencyKey: nil, payloadDigest: nil).job
        try runAll(WorkerQueue(url: url))
        XCTAssertEqual(try store.job(id: job.id)?.status, .succeeded)
        try age(job.id, days: 8)
        var checks = 0
        // Stops after the job is marked and three row batches ran.
        let expired = try WorkerQueue(url: url).expireResults(olderThan: week, rowBatchSize: 16, shouldStop: {
            checks += 1
            return checks > 4
        })
        XCTAssertEqual(expired, [job.id])
        XCTAssertNotNil(try store.job(id: job.id)?.resultsExpiredAt)
        XCTAssertEqual(try count("SELECT count(*) FROM job_frames"), 100 - 3 * 16, "three batches of 16 rows")
        XCTAssertEqual(try count("SELECT count(*) FROM job_inputs"), 100)
        XCTAssertEqual(try WorkerQueue(url: url).expireResults(olderThan: week, rowBatchSize: 16), [], "nothing new to expire")
        XCTAssertEqual(try count("SELECT count(*) FROM job_frames") + count("SELECT count(*) FROM job_inputs"), 0, "the rest went")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT purge_pending FROM jobs"), "f")
    }
}
