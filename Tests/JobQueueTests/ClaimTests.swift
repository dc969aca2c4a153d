// The worker's side: claims never collide, leases fence writes, retries respect the attempt limit. Where time
// matters (leases running out, backoffs ending) the statements run on a `ManualClock` the test moves.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class ClaimTests: QueueTestCase {
    let backoff = RetryBackoff(base: 0, cap: 0)
    let clock = ManualClock()

    func testConcurrentClaimersNeverGetTheSameJobAndEveryJobEndsWithResults() throws {
        let store = try JobStore(url: url)
        let total = 120
        var ids = Set<UUID>()
        for _ in 0..<total { ids.insert(try enqueue(store, frames: 1).id) }
        let claims = LockedArray<UUID>()
        let failures = LockedArray<String>()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            let queue = WorkerQueue(url: url)
            do {
                while let job = try queue.claim(workerId: "w\(worker)", leaseSeconds: 30) {
                    claims.append(job.id)
                    let ok = try queue.succeed(job, results: [ResultBlob(path: "out.bin", data: Data(job.id.uuidString.utf8))])
                    if !ok { failures.append("lost \(job.id)") }
                }
            } catch {
                failures.append("\(error)")
            }
        }
        XCTAssertEqual(failures.values, [])
        XCTAssertEqual(claims.values.count, total, "each job claimed exactly once")
        XCTAssertEqual(Set(claims.values), ids)
        XCTAssertEqual(try store.statusCounts()[.succeeded], total)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), count(DISTINCT job_id) FROM job_results"), "\(total)|\(total)")
    }

    func testClaimTakesAttemptAndLeaseAndHeartbeatRecordsProgress() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 4)
        let queue = WorkerQueue(url: url)
        let claimed = try XCTUnwrap(try queue.claim(workerId: "worker-a", leaseSeconds: 30))
        XCTAssertEqual(claimed.id, job.id)
        XCTAssertEqual(claimed.attempt, 1)
        XCTAssertEqual(claimed.lease, 1)
        XCTAssertEqual(claimed.record.status, .running)
        XCTAssertEqual(claimed.record.workerId, "worker-a")
        XCTAssertNotNil(claimed.record.startedAt)
        XCTAssertNil(try queue.claim(workerId: "worker-b", leaseSeconds: 30), "nothing else to claim")
        XCTAssertEqual(try queue.heartbeat(claimed, framesDone: 2, leaseSeconds: 30), .held(cancelRequested: false))
        let seen = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(seen.framesDone, 2)
        XCTAssertEqual(seen.framesTotal, 4)
        let expiry = try XCTUnwrap(seen.leaseExpiresAt).timeIntervalSince(try XCTUnwrap(seen.heartbeatAt))
        XCTAssertEqual(expiry, 30, accuracy: 0.001, "the lease runs 30 s from the heartbeat")
    }

    /// A worker whose lease expired is fenced out: its heartbeat says lost, its results are not stored,
    /// and the job's new holder finishes it.
    func testAnExpiredLeaseIsReclaimedAndTheOldHolderIsFencedOut() throws {
        let store = try JobStore(url: url, clock: clock)
        let job = try enqueue(store)
        let stale = WorkerQueue(url: url, clock: clock)
        let fresh = WorkerQueue(url: url, clock: clock)
        let first = try XCTUnwrap(try stale.claim(workerId: "stale", leaseSeconds: 0.05))
        XCTAssertEqual(try fresh.expireLeases(backoff: backoff).map(\.id), [], "the lease still runs")
        clock.advance(by: 0.2)
        let expired = try fresh.expireLeases(backoff: backoff)
        XCTAssertEqual(expired.map(\.id), [job.id])
        XCTAssertEqual(expired.map(\.status), [.queued])
        let requeued = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(requeued.error?.code, "worker_lost")
        XCTAssertTrue(requeued.error?.message.contains("stale") ?? false, "\(String(describing: requeued.error))")
        let second = try XCTUnwrap(try fresh.claim(workerId: "fresh", leaseSeconds: 30))
        XCTAssertEqual(second.attempt, 2)
        XCTAssertEqual(second.lease, 2)

        XCTAssertEqual(try stale.heartbeat(first, framesDone: 1, leaseSeconds: 30), .lost)
        XCTAssertFalse(try stale.succeed(first, results: [ResultBlob(path: "stale.npy", data: Data([0]))]))
        XCTAssertFalse(try stale.fail(first, error: JobErrorInfo(code: "x", message: "y")))
        XCTAssertNil(try stale.retry(first, error: JobErrorInfo(code: "x", message: "y"), backoff: backoff))
        XCTAssertNil(try stale.handBack(first))
        XCTAssertTrue(try fresh.succeed(second, results: [ResultBlob(path: "fresh.npy", data: Data([1]))]))
        XCTAssertFalse(try stale.succeed(first, results: [ResultBlob(path: "late.npy", data: Data([2]))]))
        XCTAssertEqual(try store.resultPaths(id: job.id), ["fresh.npy"])
        let done = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(done.status, .succeeded)
        XCTAssertNil(done.error, "success clears the previous attempt's error")
        XCTAssertEqual(done.framesDone, done.framesTotal)
    }

    func testRetriesBackOffAndStopAtTheAttemptLimitWithTheLastError() throws {
        let store = try JobStore(url: url, maxAttempts: 2, clock: clock)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url, clock: clock)
        let first = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try queue.retry(first, error: JobErrorInfo(code: "processing_failed", message: "first"),
                                       backoff: RetryBackoff(base: 0.4, cap: 10)), .queued)
        XCTAssertNil(try queue.claim(workerId: "w", leaseSeconds: 30), "the backoff keeps the job back")
        let waiting = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(waiting.runAfter.timeIntervalSince(waiting.queuedAt), 0.4, accuracy: 0.001, "backoff = base * 2^(attempt-1)")
        clock.advance(by: 0.3)
        XCTAssertNil(try queue.claim(workerId: "w", leaseSeconds: 30), "0.1 s of backoff left")
        clock.advance(by: 0.2)
        let second = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(second.attempt, 2)
        XCTAssertEqual(try queue.retry(second, error: JobErrorInfo(code: "processing_failed", message: "second"), backoff: backoff), .failed)
        let failed = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.attempt, 2)
        XCTAssertEqual(failed.error, JobErrorInfo(code: "processing_failed", message: "second"))
        XCTAssertNotNil(failed.finishedAt)
        XCTAssertNil(try queue.claim(workerId: "w", leaseSeconds: 30))
    }

    func testTheReaperAlsoRespectsTheAttemptLimit() throws {
        let store = try JobStore(url: url, maxAttempts: 1, clock: clock)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url, clock: clock)
        _ = try XCTUnwrap(try queue.claim(workerId: "gone", leaseSeconds: 0.01))
        clock.advance(by: 0.1)
        XCTAssertEqual(try queue.expireLeases(backoff: backoff).map(\.status), [.failed])
        let failed = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.error?.code, "worker_lost")
    }

    func testBadInputFailsAtOnceWithoutRetry() throws {
        let store = try JobStore(url: url, maxAttempts: 5)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url)
        let claimed = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertTrue(try queue.fail(claimed, error: JobErrorInfo(code: "bad_input", message: "frame 0001.png: not a PNG")))
        let failed = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.attempt, 1)
        XCTAssertEqual(failed.error?.code, "bad_input")
        XCTAssertNil(try queue.claim(workerId: "w", leaseSeconds: 30))
    }

    func testHandBackGivesTheAttemptBackAndCancellationOfARunningJobIsSeenByTheHeartbeat() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url)
        let first = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try queue.handBack(first), .queued)
        XCTAssertEqual(try store.job(id: job.id)?.attempt, 0, "a hand-back spends no attempt")
        let second = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(second.attempt, 1)
        XCTAssertEqual(second.lease, 2, "but the lease still moves on, so the fence holds")

        let flagged = try XCTUnwrap(try store.cancel(id: job.id))
        XCTAssertEqual(flagged.status, .running, "a running job is only flagged")
        XCTAssertTrue(flagged.cancelRequested)
        XCTAssertEqual(try queue.heartbeat(second, framesDone: 1, leaseSeconds: 30), .held(cancelRequested: true))
        XCTAssertTrue(try queue.markCancelled(second))
        XCTAssertEqual(try store.job(id: job.id)?.status, .cancelled)
    }

    func testACancelledJobWhoseWorkerDiedEndsCancelledNotRequeued() throws {
        let store = try JobStore(url: url, clock: clock)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url, clock: clock)
        _ = try XCTUnwrap(try queue.claim(workerId: "gone", leaseSeconds: 0.05))
        _ = try store.cancel(id: job.id)
        clock.advance(by: 0.2)
        XCTAssertEqual(try queue.expireLeases(backoff: backoff).map(\.status), [.cancelled])
    }

    func testEnqueueWakesAListeningWorker() throws {
        let store = try JobStore(url: url)
        let listener = WorkerQueue(url: url)
        try listener.listen()
        XCTAssertFalse(try listener.waitForJobs(timeout: 0), "no notification before an enqueue")
        _ = try enqueue(store)
        // Returns at the notification; the timeout only turns a missing one into a failure instead of a hang.
        XCTAssertTrue(try listener.waitForJobs(timeout: 180), "the enqueue notified the listener")
    }
}
