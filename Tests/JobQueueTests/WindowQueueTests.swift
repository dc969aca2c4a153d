// Windows as the unit of work: planning at enqueue, the claim order, per-window leases, fencing, retries,
// hand-back and cancellation, and the job's status as its windows give it. Where time matters the
// statements run on a `ManualClock` the test moves.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class WindowQueueTests: QueueTestCase {
    let backoff = RetryBackoff(base: 0, cap: 0)
    let clock = ManualClock()

    private func enqueue(_ store: JobStore, frames count: Int, kernel: Int) throws -> JobRecord {
        try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: kernel), frames: frames(count),
                          idempotencyKey: nil, payloadDigest: nil).job
    }

    func testEnqueuePlansTheWindowsAndAFinishingStepInItsTransaction() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 40, kernel: 10)
        let windows = try store.windows(id: job.id)
        let plan = WindowAssignment.plan(frames: 40, kernelSize: 10)
        XCTAssertEqual(windows.count, plan.count + 1)
        XCTAssertEqual(windows.dropLast().map(\.inputFrames), plan.map(\.inputFrames))
        XCTAssertEqual(windows.dropLast().map(\.resultFrames), plan.map(\.frames))
        XCTAssertEqual(windows.last?.kind, .finish)
        XCTAssertEqual(Set(windows.map(\.status)), [.queued])
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT windows_total FROM jobs"), "\(plan.count)")
    }

    /// Idle workers pile onto the job with the fewest running windows, then the oldest: a second video
    /// starts as soon as a worker frees.
    func testClaimsGoToTheJobWithFewestRunningWindowsThenTheOldest() throws {
        let store = try JobStore(url: url, clock: clock)
        let older = try enqueue(store, frames: 40, kernel: 10)
        clock.advance(by: 1)
        let newer = try enqueue(store, frames: 40, kernel: 10)
        let queue = WorkerQueue(url: url, clock: clock)
        let claims = try (0..<4).map { _ in try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30)) }
        XCTAssertEqual(claims.map(\.jobId), [older.id, newer.id, older.id, newer.id])
        XCTAssertEqual(claims.map(\.index), [0, 0, 1, 1])
        XCTAssertEqual(try store.job(id: older.id)?.status, .running)
        // A freed worker goes to the job that has fewer windows running.
        XCTAssertTrue(try queue.succeed(claims[0], frames: results(claims[0])))
        XCTAssertEqual(try queue.claim(workerId: "w", leaseSeconds: 30)?.jobId, older.id)
        XCTAssertTrue(try queue.succeed(claims[1], frames: results(claims[1])))
        XCTAssertTrue(try queue.succeed(claims[3], frames: results(claims[3])))
        XCTAssertEqual(try queue.claim(workerId: "w", leaseSeconds: 30)?.jobId, newer.id)
    }

    func testConcurrentClaimersNeverShareAWindowAndEveryFrameIsStoredOnce() throws {
        let store = try JobStore(url: url)
        let jobs = try (0..<3).map { _ in try enqueue(store, frames: 60, kernel: 4) }
        let claims = LockedArray<String>()
        let failures = LockedArray<String>()
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            let queue = WorkerQueue(url: url)
            do {
                for window in try runAll(queue, worker: "w\(worker)") { claims.append("\(window.jobId) \(window.index)") }
            } catch {
                failures.append("\(error)")
            }
        }
        XCTAssertEqual(failures.values, [])
        let windows = try jobs.reduce(0) { $0 + (try store.windows(id: $1.id)).count }
        XCTAssertEqual(claims.values.count, windows, "every window (and finishing step) claimed exactly once")
        XCTAssertEqual(Set(claims.values).count, windows)
        XCTAssertEqual(try store.statusCounts()[.succeeded], 3)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), count(DISTINCT (job_id, frame_index)) FROM job_frames"), "180|180")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT frames_done FROM jobs ORDER BY id LIMIT 1"), "60")
    }

    func testTheFinishingStepWaitsForEveryWindowAndTheJobSucceedsWithIt() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 12, kernel: 6)
        let queue = WorkerQueue(url: url)
        var windows: [ClaimedWindow] = []
        while let window = try queue.claim(workerId: "w", leaseSeconds: 30) { windows.append(window) }
        XCTAssertEqual(windows.map(\.kind), Array(repeating: .window, count: windows.count), "no finishing step while windows run")
        for window in windows.dropLast() { XCTAssertTrue(try queue.succeed(window, frames: results(window))) }
        XCTAssertNil(try queue.claim(workerId: "w", leaseSeconds: 30), "one window is not stored yet")
        XCTAssertEqual(try store.job(id: job.id)?.status, .running)
        XCTAssertTrue(try queue.succeed(windows.last!, frames: results(windows.last!)))
        XCTAssertEqual(try store.job(id: job.id)?.framesDone, 12)
        let step = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(step.kind, .finish)
        XCTAssertEqual(try queue.disparityRange(of: step), 0...11)
        XCTAssertEqual(try queue.framesToRender(step), Array(0..<12))
        XCTAssertFalse(try store.resultPaths(id: job.id).contains("disparity.npy"), "not before every frame is coloured")
        for frame in 0..<12 { XCTAssertTrue(try queue.storeRendered(step, frame: frame, RenderedFrame(colorPNG: Data([UInt8(frame)]), videoPNG: nil))) }
        XCTAssertTrue(try queue.finish(step))
        XCTAssertTrue(try queue.finish(step), "a rerun after a lost COMMIT recognises its own move")
        let done = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(done.status, .succeeded)
        XCTAssertNotNil(done.finishedAt)
        XCTAssertEqual(try store.counters().finished[.succeeded], 1)
        let paths = try store.resultPaths(id: job.id)
        XCTAssertEqual(paths.count, 1 + 12 + 12)
        XCTAssertEqual(try store.result(id: job.id, path: "color/0005.png"), Data([5]))
        XCTAssertEqual(try store.result(id: job.id, path: "disparity/0003.png"), Data("png 3".utf8))
    }

    func testDisparityArrayStreamsFromTheFramesAndEqualsTheWholeArray() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 9, kernel: 4)
        try runAll(WorkerQueue(url: url))
        let data = try XCTUnwrap(try store.result(id: job.id, path: "disparity.npy"))
        XCTAssertEqual(data.count, FrameFiles.npySize(frames: 9, height: 2, width: 3))
        var pieces: [Int] = []
        XCTAssertTrue(try store.streamDisparityArray(id: job.id) { pieces.append($0.count) })
        XCTAssertEqual(pieces, [FrameFiles.npyHeader(frames: 9, height: 2, width: 3).count] + Array(repeating: 24, count: 9))
        let floats = data.suffix(9 * 6 * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(floats, (0..<9).flatMap { Array(repeating: Float($0), count: 6) })
        XCTAssertTrue(String(decoding: data.prefix(80), as: UTF8.self).contains("'shape': (9, 2, 3)"))
    }

    /// A worker whose lease expired is fenced out, its window reclaimed, and only that window runs again.
    func testAnExpiredWindowLeaseIsRescuedAndTheOldHolderIsFencedOut() throws {
        let store = try JobStore(url: url, clock: clock)
        let job = try enqueue(store, frames: 20, kernel: 10)
        let queue = WorkerQueue(url: url, clock: clock)
        let first = try XCTUnwrap(try queue.claim(workerId: "dead", leaseSeconds: 5))
        let second = try XCTUnwrap(try queue.claim(workerId: "alive", leaseSeconds: 60))
        XCTAssertTrue(try queue.succeed(second, frames: results(second)))
        clock.advance(by: 10)
        let expired = try queue.expireLeases(backoff: backoff)
        XCTAssertEqual(expired.map(\.window), [first.index])
        XCTAssertEqual(expired.map(\.status), [.queued])
        XCTAssertEqual(try queue.heartbeat(first, iterationsDone: 1, iterationsTotal: 4, leaseSeconds: 5), .lost)
        let again = try XCTUnwrap(try queue.claim(workerId: "alive", leaseSeconds: 60))
        XCTAssertEqual(again.index, first.index)
        XCTAssertEqual(again.attempt, 2)
        XCTAssertEqual(again.lease, first.lease + 1)
        XCTAssertFalse(try queue.succeed(first, frames: results(first)), "the old lease stores nothing")
        XCTAssertEqual(try store.job(id: job.id)?.attempt, 2, "the job's attempt is its windows' highest")
        XCTAssertEqual(try store.job(id: job.id)?.error?.code, "worker_lost")
        XCTAssertTrue(try store.job(id: job.id)?.error?.message.contains("worker dead") ?? false)
        XCTAssertTrue(try queue.succeed(again, frames: results(again)))
        try runAll(queue)
        XCTAssertEqual(try store.job(id: job.id)?.status, .succeeded)
        XCTAssertEqual(try store.windows(id: job.id).map(\.attempt), [2, 1, 1, 1, 1], "only the dead worker's window ran again")
    }

    func testAWindowThatUsesUpItsAttemptsFailsTheJobAndCancelsTheOthers() throws {
        let store = try JobStore(url: url, maxAttempts: 2, clock: clock)
        let job = try enqueue(store, frames: 30, kernel: 10)
        let queue = WorkerQueue(url: url, clock: clock)
        let error = JobErrorInfo(code: "processing_failed", message: "boom")
        let other = try XCTUnwrap(try queue.claim(workerId: "b", leaseSeconds: 30))
        var window = try XCTUnwrap(try queue.claim(workerId: "a", leaseSeconds: 30))
        XCTAssertEqual(try queue.retry(window, error: error, backoff: RetryBackoff(base: 4, cap: 60)), .queued)
        XCTAssertEqual(try store.job(id: job.id)?.status, .running, "another window still runs")
        XCTAssertNotEqual(try queue.claim(workerId: "a", leaseSeconds: 30)?.index, window.index, "backing off")
        clock.advance(by: 4)
        window = try XCTUnwrap(try queue.claim(workerId: "a", leaseSeconds: 30))
        XCTAssertEqual(window.attempt, 2)
        XCTAssertEqual(try queue.retry(window, error: error, backoff: backoff), .failed)
        let failed = try XCTUnwrap(try store.job(id: job.id))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(failed.error?.code, "processing_failed")
        XCTAssertEqual(failed.error?.message, "window \(window.index) (frames \(window.window.inputFrames.lowerBound)-\(window.window.inputFrames.upperBound - 1)): boom")
        let statuses = try store.windows(id: job.id).map(\.status)
        XCTAssertEqual(statuses.filter { $0 == .failed }.count, 1)
        XCTAssertEqual(statuses.filter { $0 != .failed }, Array(repeating: .cancelled, count: statuses.count - 1))
        XCTAssertEqual(try queue.heartbeat(other, iterationsDone: 0, iterationsTotal: nil, leaseSeconds: 30), .lost,
                       "a running window of a failed job stops at its next heartbeat")
        XCTAssertEqual(try store.counters().finished[.failed], 1)
        XCTAssertNil(try queue.claim(workerId: "a", leaseSeconds: 30))
    }

    func testBadInputFailsTheJobAtOnce() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 3, kernel: 3)
        let queue = WorkerQueue(url: url)
        let window = try XCTUnwrap(try queue.claim(workerId: "a", leaseSeconds: 30))
        XCTAssertTrue(try queue.fail(window, error: JobErrorInfo(code: "bad_input", message: "not a PNG")))
        XCTAssertTrue(try queue.fail(window, error: JobErrorInfo(code: "bad_input", message: "not a PNG")), "a rerun is recognised")
        XCTAssertEqual(try store.job(id: job.id)?.status, .failed)
        XCTAssertEqual(try store.counters().finished[.failed], 1, "counted once")
    }

    func testHandBackGivesTheAttemptBackAndCancellationIsSeenByTheHeartbeat() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 20, kernel: 10)
        let queue = WorkerQueue(url: url)
        let window = try XCTUnwrap(try queue.claim(workerId: "a", leaseSeconds: 30))
        XCTAssertEqual(try queue.handBack(window), .queued)
        XCTAssertEqual(try store.job(id: job.id)?.status, .queued, "nothing stored and nothing running")
        XCTAssertEqual(try store.job(id: job.id)?.attempt, 0)
        let first = try XCTUnwrap(try queue.claim(workerId: "a", leaseSeconds: 30))
        XCTAssertEqual(first.attempt, 1)
        let second = try XCTUnwrap(try queue.claim(workerId: "b", leaseSeconds: 30))
        XCTAssertEqual(try store.cancel(id: job.id)?.status, .running, "windows still run")
        XCTAssertEqual(try queue.heartbeat(first, iterationsDone: 1, iterationsTotal: 4, leaseSeconds: 30), .held(cancelRequested: true))
        XCTAssertNil(try queue.claim(workerId: "c", leaseSeconds: 30), "queued windows of a cancelled job are not claimed")
        XCTAssertTrue(try queue.markCancelled(first))
        XCTAssertEqual(try store.job(id: job.id)?.status, .running)
        XCTAssertEqual(try queue.handBack(second), .cancelled, "a hand-back of a cancelled job's window ends it")
        XCTAssertEqual(try store.job(id: job.id)?.status, .cancelled)
        XCTAssertEqual(Set(try store.windows(id: job.id).map(\.status)), [.cancelled])
        XCTAssertEqual(try store.counters().finished[.cancelled], 1)
    }

    func testCancellingAQueuedJobEndsItAndItsWindowsAtOnce() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store, frames: 20, kernel: 10)
        XCTAssertEqual(try store.cancel(id: job.id)?.status, .cancelled)
        XCTAssertEqual(Set(try store.windows(id: job.id).map(\.status)), [.cancelled])
        XCTAssertNil(try WorkerQueue(url: url).claim(workerId: "a", leaseSeconds: 30))
    }

    func testACancelledJobWhoseWorkerDiedEndsCancelled() throws {
        let store = try JobStore(url: url, clock: clock)
        let job = try enqueue(store, frames: 2, kernel: 3)
        let queue = WorkerQueue(url: url, clock: clock)
        _ = try XCTUnwrap(try queue.claim(workerId: "gone", leaseSeconds: 1))
        _ = try store.cancel(id: job.id)
        clock.advance(by: 2)
        XCTAssertEqual(try queue.expireLeases(backoff: backoff).map(\.status), [.cancelled])
        XCTAssertEqual(try store.job(id: job.id)?.status, .cancelled)
    }

    /// Jobs stored before migration 0006: a queued one is planned by a worker and runs; a succeeded one keeps
    /// its files downloadable from `job_results`.
    func testJobsFromBeforeWindowsStillRunAndStayDownloadable() throws {
        let store = try JobStore(url: url)
        let queued = try enqueue(store, frames: 12, kernel: 10)
        let old = try enqueue(store, frames: 2, kernel: 3)
        _ = try TestDatabase.psql(url, """
            DELETE FROM job_windows; UPDATE jobs SET windows_total = NULL;
            UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = '\(old.id)';
            INSERT INTO job_results VALUES ('\(old.id)', 'disparity.npy', '\\x0102'), ('\(old.id)', 'color/0000.png', '\\x03');
            """)
        let queue = WorkerQueue(url: url)
        XCTAssertNil(try queue.claim(workerId: "a", leaseSeconds: 30), "no windows yet")
        XCTAssertEqual(try queue.planPendingJobs(), 1, "only the queued job is planned")
        try runAll(queue)
        XCTAssertEqual(try store.job(id: queued.id)?.status, .succeeded)
        XCTAssertEqual(try store.windows(id: queued.id).count, WindowAssignment.plan(frames: 12, kernelSize: 10).count + 1)
        XCTAssertEqual(try store.resultPaths(id: old.id), ["color/0000.png", "disparity.npy"])
        XCTAssertEqual(try store.result(id: old.id, path: "disparity.npy"), Data([1, 2]))
        XCTAssertEqual(try store.windows(id: old.id), [])
    }

    /// The API's read: the job and every window in one statement (arrays aggregated beside the job row),
    /// decoded to exactly what the per-window statement gives, whatever the worker ids and messages hold.
    func testAReportHasTheJobAndEveryWindowAsTheirOwnStatementsReadThem() throws {
        let store = try JobStore(url: url, clock: clock)
        let job = try enqueue(store, frames: 40, kernel: 10)
        clock.advance(by: 1)  // created later: listed first
        let other = try enqueue(store, frames: 3, kernel: 3)
        let queue = WorkerQueue(url: url, clock: clock)
        let awkward = ["NULL", "a \"quoted\", spaced {id}", "back\\slash", "", "ünï"]
        var claims: [ClaimedWindow] = []
        for worker in awkward { claims.append(try XCTUnwrap(try queue.claim(workerId: worker, leaseSeconds: 30))) }
        XCTAssertTrue(try queue.succeed(claims[0], frames: results(claims[0])))
        XCTAssertEqual(try queue.heartbeat(claims[1], iterationsDone: 3, iterationsTotal: 4, leaseSeconds: 30), .held(cancelRequested: false))
        XCTAssertEqual(try queue.retry(claims[2], error: JobErrorInfo(code: "processing_failed", message: "line one\nline \"two\", {3} \\ NULL"),
                                       backoff: RetryBackoff(base: 5, cap: 5)), .queued)
        for id in [job.id, other.id] {
            let report = try XCTUnwrap(try store.report(id: id))
            XCTAssertEqual(report.job, try store.job(id: id))
            XCTAssertEqual(report.windows, try store.windows(id: id))
        }
        let windows = try XCTUnwrap(try store.report(id: job.id)).windows
        XCTAssertEqual(windows.count, WindowAssignment.plan(frames: 40, kernelSize: 10).count + 1)
        let workers = try [job.id, other.id].flatMap { try XCTUnwrap(try store.report(id: $0)).windows.compactMap(\.workerId) }
        XCTAssertEqual(workers.sorted(), awkward.sorted())
        XCTAssertEqual(try XCTUnwrap(try store.report(id: job.id)).job.windowsTotal, windows.count - 1)
        let (page, _) = try store.reports(status: nil, limit: 10, after: nil)
        XCTAssertEqual(page.map(\.job.id), [other.id, job.id], "newest first")
        XCTAssertEqual(page.last?.windows, windows)
        XCTAssertNil(try store.report(id: UUID()))
        // A job stored before windows has none.
        try TestDatabase.psql(url, "DELETE FROM job_windows WHERE job_id = '\(other.id)'")
        XCTAssertEqual(try store.report(id: other.id)?.windows, [])
    }

    /// How long an idle worker may wait: until the earliest backoff among claimable windows ends; not for a
    /// finishing step whose windows are not all stored, nor for a job being cancelled.
    func testSecondsUntilClaimableIsTheEarliestBackoffOfAClaimableWindow() throws {
        let store = try JobStore(url: url, clock: clock)
        let queue = WorkerQueue(url: url, clock: clock)
        XCTAssertNil(try queue.secondsUntilClaimable(), "an empty queue")
        let job = try enqueue(store, frames: 1, kernel: 3)
        XCTAssertEqual(try queue.secondsUntilClaimable(), 0, "claimable now")
        let window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertNil(try queue.secondsUntilClaimable(), "running, and the finishing step waits for it")
        XCTAssertEqual(try queue.retry(window, error: JobErrorInfo(code: "processing_failed", message: "once"),
                                       backoff: RetryBackoff(base: 7, cap: 60)), .queued)
        XCTAssertEqual(try queue.secondsUntilClaimable(), 7)
        clock.advance(by: 3)
        let other = try enqueue(store, frames: 1, kernel: 3)
        let otherWindow = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(otherWindow.jobId, other.id)
        XCTAssertEqual(try queue.retry(otherWindow, error: JobErrorInfo(code: "processing_failed", message: "once"),
                                       backoff: RetryBackoff(base: 2, cap: 60)), .queued)
        XCTAssertEqual(try queue.secondsUntilClaimable(), 2, "the earlier of the two backoffs")
        _ = try store.cancel(id: other.id)
        XCTAssertEqual(try queue.secondsUntilClaimable(), 4, "a cancelled job's window is not waited for")
        clock.advance(by: 5)
        XCTAssertEqual(try queue.secondsUntilClaimable(), -1, "past its end: claimable now")
        XCTAssertEqual(try queue.claim(workerId: "w", leaseSeconds: 30)?.jobId, job.id)
    }

    /// Every way a window goes back to the queue notifies, as an enqueue does: a retry, a re-queue by the
    /// lease reaper, a hand-back.
    func testRetriesReapedLeasesAndHandBacksNotifyListeningWorkers() throws {
        let store = try JobStore(url: url, clock: clock)
        let job = try enqueue(store, frames: 20, kernel: 10)
        let queue = WorkerQueue(url: url, clock: clock)
        let listener = WorkerQueue(url: url, clock: clock)
        try listener.listen()
        let retried = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        let dead = try XCTUnwrap(try queue.claim(workerId: "dead", leaseSeconds: 1))
        let stopped = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertFalse(try listener.waitForJobs(timeout: 0), "claims notify nobody")
        // Each wait returns at the notification; the timeout only turns a missing one into a failure.
        XCTAssertEqual(try queue.retry(retried, error: JobErrorInfo(code: "processing_failed", message: "once"),
                                       backoff: RetryBackoff(base: 5, cap: 5)), .queued)
        XCTAssertTrue(try listener.waitForJobs(timeout: 180), "the retry notified")
        clock.advance(by: 2)
        XCTAssertEqual(try queue.expireLeases(backoff: backoff).map(\.window), [dead.index])
        XCTAssertTrue(try listener.waitForJobs(timeout: 180), "the re-queue by the reaper notified")
        XCTAssertEqual(try queue.handBack(stopped), .queued)
        XCTAssertTrue(try listener.waitForJobs(timeout: 180), "the hand-back notified")
        XCTAssertFalse(try listener.waitForJobs(timeout: 0))
        XCTAssertEqual(try store.job(id: job.id)?.status, .queued)
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

    /// The upgrade itself: a database at migration 0005 with a queued, a running (its old worker stopped) and
    /// a succeeded job. After 0006 the first two are planned by a worker and run; the third keeps its files.
    func testMigratingADatabaseWithOldJobs() throws {
        let (oldURL, oldSchema) = try TestDatabase.makeSchema("windows_upgrade")
        defer { TestDatabase.dropSchema(oldSchema) }
        try Migrator(url: oldURL, migrations: Array(Migrations.all.prefix(5))).run()
        let (queued, running, done) = (UUID(), UUID(), UUID())
        try TestDatabase.psql(oldURL, """
            INSERT INTO jobs (id, status, iters, kernel_size, max_attempts, frames_total, attempt, lease, worker_id, started_at, finished_at)
            VALUES ('\(queued)', 'queued', 2, 4, 3, 9, 0, 0, NULL, NULL, NULL),
                   ('\(running)', 'running', 2, 3, 3, 2, 1, 1, 'old-worker', now(), NULL),
                   ('\(done)', 'succeeded', 2, 3, 3, 1, 1, 1, 'old-worker', now(), now());
            INSERT INTO job_inputs SELECT '\(queued)', i, format('%s.png', i), '\\x01', '\\x02' FROM generate_series(0, 8) AS i;
            INSERT INTO job_inputs SELECT '\(running)', i, format('%s.png', i), '\\x01', '\\x02' FROM generate_series(0, 1) AS i;
            INSERT INTO job_results VALUES ('\(done)', 'disparity.npy', '\\x0102'), ('\(done)', 'disparity/0.png', '\\x03');
            """)
        XCTAssertEqual(try Migrator(url: oldURL).run(), [6, 7, 8, 9, 10])
        let store = try JobStore(url: oldURL)
        XCTAssertEqual(try store.job(id: running)?.status, .queued, "the stopped worker's job is queued again")
        let queue = WorkerQueue(url: oldURL)
        XCTAssertEqual(try queue.planPendingJobs(), 2)
        XCTAssertEqual(try queue.planPendingJobs(), 0, "planned once")
        let ran = try runAll(queue)
        XCTAssertEqual(Set(ran.map(\.jobId)), [queued, running])
        for id in [queued, running] {
            XCTAssertEqual(try store.job(id: id)?.status, .succeeded)
            XCTAssertTrue(try store.resultPaths(id: id).contains("disparity.npy"))
        }
        XCTAssertEqual(try store.job(id: queued)?.framesDone, 9)
        XCTAssertEqual(try store.resultPaths(id: done), ["disparity.npy", "disparity/0.png"])
        XCTAssertEqual(try store.result(id: done, path: "disparity/0.png"), Data([3]))
    }
}
