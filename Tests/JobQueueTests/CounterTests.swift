// The figures /metrics reports (migration 0005): kept by the transitions, they only rise, whatever is deleted,
// and the run-time histogram is cumulative.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class CounterTests: QueueTestCase {
    let clock = ManualClock()

    /// Claims the window of the oldest queued job (one window: kernel 3 on at most 3 frames), lets `seconds`
    /// of the clock pass, and makes it and the job's finishing step succeed.
    private func succeedNext(_ queue: WorkerQueue, after seconds: Double) throws {
        let window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 86_400))
        clock.advance(by: seconds)
        XCTAssertTrue(try queue.succeed(window, frames: results(window)))
        let step = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 86_400))
        XCTAssertEqual(step.kind, .finish)
        XCTAssertTrue(try queue.finish(step))
    }

    func testEveryTerminalMoveCountsOnceAndDeletingOrExpiringJobsTakesNothingBack() throws {
        let store = try JobStore(url: url, maxAttempts: 1, clock: clock)
        let queue = WorkerQueue(url: url, clock: clock)
        let zero = try store.counters()
        XCTAssertEqual(zero.finished, [.succeeded: 0, .failed: 0, .cancelled: 0])
        XCTAssertEqual(zero.durationCount, 0)

        _ = try store.cancel(id: try enqueue(store).id)                      // queued -> cancelled (API)
        _ = try enqueue(store)
        try succeedNext(queue, after: 2)                                       // running -> succeeded
        _ = try enqueue(store)
        let failing = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertTrue(try queue.fail(failing, error: JobErrorInfo(code: "bad_input", message: "x")))  // -> failed
        _ = try enqueue(store)
        let retried = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try queue.retry(retried, error: JobErrorInfo(code: "processing_failed", message: "y"),
                                       backoff: RetryBackoff(base: 0, cap: 0)), .failed)  // attempts used up -> failed
        let handed = try enqueue(store)
        let handedClaim = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        _ = try store.cancel(id: handed.id)                                   // running: only flagged, not counted
        XCTAssertEqual(try queue.handBack(handedClaim), .cancelled)           // -> cancelled (worker)
        _ = try enqueue(store)
        _ = try XCTUnwrap(try queue.claim(workerId: "gone", leaseSeconds: 1))
        clock.advance(by: 2)
        XCTAssertEqual(try queue.expireLeases(backoff: RetryBackoff()).map(\.status), [.failed])  // reaper -> failed
        let counted = try store.counters()
        XCTAssertEqual(counted.finished, [.succeeded: 1, .failed: 3, .cancelled: 2])
        XCTAssertEqual(counted.durationCount, 1)
        XCTAssertEqual(counted.durationSum, 2, accuracy: 1e-6)
        XCTAssertEqual(counted.framesSucceeded, 2)
        XCTAssertEqual(try store.counters(), counted, "reading changes nothing")

        // Retention and deletion remove data and rows; the figures stay.
        clock.advance(by: 1)
        _ = try queue.expireResults(olderThan: 0)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM jobs WHERE results_expired_at IS NOT NULL"), "6")
        XCTAssertEqual(try store.counters(), counted)
        for job in try store.list(status: nil, limit: 100, after: nil).jobs { XCTAssertTrue(try store.delete(id: job.id)) }
        XCTAssertEqual(try store.statusCounts().values.reduce(0, +), 0, "every job is gone")
        XCTAssertEqual(try store.counters(), counted, "a DELETE takes nothing back")
        _ = try enqueue(store)
        try succeedNext(queue, after: 1)
        let later = try store.counters()
        XCTAssertEqual(later.finished[.succeeded], 2, "and counting goes on from there")
        XCTAssertEqual(later.durationCount, 2)
    }

    func testTheRunTimeHistogramIsCumulative() throws {
        let store = try JobStore(url: url, clock: clock)
        let queue = WorkerQueue(url: url, clock: clock)
        let runTimes: [Double] = [0.5, 3, 5, 100, 5_000]
        for seconds in runTimes {
            _ = try enqueue(store, frames: 3)
            try succeedNext(queue, after: seconds)
        }
        let counters = try store.counters()
        let bounds = counters.durationBuckets.map(\.upperBound)
        XCTAssertEqual(bounds, [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, .infinity], "migration 0005's bounds, +Inf last")
        for bucket in counters.durationBuckets {
            XCTAssertEqual(bucket.cumulativeCount, runTimes.filter { $0 <= bucket.upperBound }.count,
                           "le=\(bucket.upperBound) counts every run of at most that long")
        }
        XCTAssertEqual(counters.durationBuckets.map(\.cumulativeCount), counters.durationBuckets.map(\.cumulativeCount).sorted(),
                       "never decreasing from one bound to the next")
        XCTAssertEqual(counters.durationCount, runTimes.count)
        XCTAssertEqual(counters.durationSum, runTimes.reduce(0, +), accuracy: 1e-6)
        XCTAssertEqual(counters.framesSucceeded, 15)
    }

    func testTheMigrationStartsTheFiguresFromTheJobsAlreadyStored() throws {
        let (oldURL, oldSchema) = try TestDatabase.makeSchema("counters_upgrade")
        defer { TestDatabase.dropSchema(oldSchema) }
        try Migrator(url: oldURL, migrations: Array(Migrations.all.prefix(4))).run()
        try TestDatabase.psql(oldURL, """
            INSERT INTO jobs (id, status, iters, kernel_size, max_attempts, frames_total, started_at, finished_at)
            SELECT gen_random_uuid(), s.status, 2, 3, 1, 4, now() - make_interval(secs => s.seconds), now()
            FROM (VALUES ('succeeded', 10), ('succeeded', 4000), ('failed', 1), ('cancelled', 1), ('queued', 0)) AS s (status, seconds)
            """)
        XCTAssertEqual(try Migrator(url: oldURL).run(), [5, 6, 7, 8, 9, 10])
        let counters = try JobStore(url: oldURL).counters()
        XCTAssertEqual(counters.finished, [.succeeded: 2, .failed: 1, .cancelled: 1])
        XCTAssertEqual(counters.durationBuckets.first { $0.upperBound == 15 }?.cumulativeCount, 1)
        XCTAssertEqual(counters.durationCount, 2)
        XCTAssertEqual(counters.durationSum, 4010, accuracy: 1e-3)
        XCTAssertEqual(counters.framesSucceeded, 8)
    }
}
