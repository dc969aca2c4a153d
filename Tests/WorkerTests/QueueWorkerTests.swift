// The worker's mechanics in-process against a real PostgreSQL, with a cheap processor instead of the network.
// Time is a `ManualClock` the test moves (except where a test restarts the server, which runs on real time):
// heartbeats, polls, the lease reaper and retention run exactly when the test advances it, and every wait is
// for an event (a row change, a worker event, the fake network at a frame), never for seconds to pass.
import Foundation
@testable import JobQueue
import Logging
import QueueTestSupport
import TestSupport
@testable import Worker
import XCTest

/// Does real but cheap work: a checksum of each frame's bytes, checking for cancellation before each frame
/// as the network does between iterations, and optionally held before one frame by a `FrameGate`.
final class ChecksumProcessor: JobProcessor {
    let failures: Int
    let gate: FrameGate
    private let lock = NSLock()
    private var calls = 0

    init(failures: Int = 0, holdAt frame: Int? = nil) {
        self.failures = failures
        gate = FrameGate(holdAt: frame)
    }

    var callCount: Int { lock.withLock { calls } }

    func process(frames: [InputFrame], parameters: JobParameters, progress: @escaping (Int, Int) -> Void,
                 isCancelled: @escaping () -> Bool) throws -> [ResultBlob] {
        let call = lock.withLock { calls += 1; return calls }
        var results: [ResultBlob] = []
        for frame in frames {
            if frame.left.starts(with: Array("BAD".utf8)) { throw BadJobInput("frame \(frame.name): not a PNG") }
            try gate.pass(frame.index, isCancelled: isCancelled)
            if isCancelled() { throw CancellationError() }
            let sum = (frame.left + frame.right).reduce(UInt32(0)) { $0 &+ UInt32($1) }
            results.append(ResultBlob(path: "checksum/\(frame.name).txt", data: Data("\(sum)".utf8)))
            progress(frame.index + 1, frames.count)
        }
        if call <= failures { throw NSError(domain: "test", code: call, userInfo: [NSLocalizedDescriptionKey: "induced failure \(call)"]) }
        return results
    }
}

/// A worker running on a thread of its own, which the test can wait for.
final class WorkerHandle {
    let worker: QueueWorker
    private let done = DispatchSemaphore(value: 0)
    private var joined = false

    init(_ worker: QueueWorker) {
        self.worker = worker
        Thread { [done] in
            worker.run()
            done.signal()
        }.start()
    }

    /// True once `run()` has returned; waits for it up to the hang guard the first time.
    func join() -> Bool {
        if !joined { joined = done.wait(timeout: .now() + hangGuard) == .success }
        return joined
    }
}

final class QueueWorkerTests: XCTestCase {
    var url = ""
    var schema = ""
    var workers: [WorkerHandle] = []
    var clock = ManualClock()
    var events = EventLog()
    var store: JobStore!
    var watch: JobWatch!

    override func setUpWithError() throws {
        (url, schema) = try TestDatabase.makeSchema(name.filter(\.isLetter).suffix(24).description)
        try Migrator(url: url, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })).run()
        store = try JobStore(url: url, clock: clock)
        watch = try JobWatch(url: url, schema: schema)
    }

    override func tearDown() {
        for handle in workers {
            handle.worker.stop()
            XCTAssertTrue(handle.join(), "the worker stops")
        }
        TestDatabase.dropSchema(schema)
    }

    /// Heartbeat every 0.2 s of the clock, lease 1 s, poll 0.5 s, reaper 0.3 s, no retry backoff: the figures
    /// only matter against how far a test moves the clock.
    func configuration(concurrency: Int = 1, onStop: WorkerConfiguration.StopBehaviour = .handBack) -> WorkerConfiguration {
        WorkerConfiguration(workerId: "test-\(schema)", concurrency: concurrency, leaseSeconds: 1, heartbeatInterval: 0.2,
                            pollInterval: 0.5, reapInterval: 0.3, backoff: RetryBackoff(base: 0, cap: 0), onStop: onStop,
                            reconnectMin: 0.1, reconnectMax: 0.5)
    }

    @discardableResult
    func startWorker(_ processors: [JobProcessor], _ configuration: WorkerConfiguration, url: String? = nil,
                     clock: JobClock? = nil) throws -> QueueWorker {
        var logger = Logger(label: "worker-test")
        logger.logLevel = .critical  // reconnection warnings are expected here
        let worker = try QueueWorker(url: url ?? self.url, processors: processors, configuration: configuration, logger: logger,
                                     clock: clock ?? self.clock, events: events.observer)
        workers.append(WorkerHandle(worker))
        return worker
    }

    func frames(_ count: Int, bad: Bool = false) -> [InputFrame] {
        (0..<count).map { index in
            InputFrame(index: index, name: String(format: "%04d", index),
                       left: bad ? Data("BAD".utf8) : Data([UInt8(index), 1, 2]), right: Data([3, 4, UInt8(index)]))
        }
    }

    func enqueue(_ count: Int, bad: Bool = false, into store: JobStore? = nil) throws -> UUID {
        try (store ?? self.store).enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(count, bad: bad),
                                          idempotencyKey: nil, payloadDigest: nil).job.id
    }

    func testTwoSlotsDrainAQueueAndEveryJobEndsWithItsResults() throws {
        let ids = try (0..<10).map { _ in try enqueue(2) }
        let processors = [ChecksumProcessor(), ChecksumProcessor()]
        try startWorker(processors, configuration(concurrency: 2))
        for id in ids {
            let job = try watch.wait(for: id, store) { $0.status.isTerminal }
            XCTAssertEqual(job.status, .succeeded)
            XCTAssertEqual(job.attempt, 1)
            XCTAssertEqual(job.framesDone, 2)
            XCTAssertEqual(try store.resultPaths(id: id), ["checksum/0000.txt", "checksum/0001.txt"])
            // Frame 1: left [1, 1, 2], right [3, 4, 1].
            XCTAssertEqual(try store.result(id: id, path: "checksum/0001.txt"), Data("12".utf8))
        }
        XCTAssertEqual(processors.map(\.callCount).reduce(0, +), 10, "no job ran twice")
    }

    func testTheMaintenanceThreadExpiresOldFinishedJobsInBatches() throws {
        let ids = try (0..<5).map { _ in try enqueue(2) }
        var config = configuration()
        config.resultRetention = 86_400
        config.retentionInterval = 0.2
        config.retentionBatchSize = 2  // five jobs take three batches
        try startWorker([ChecksumProcessor()], config)
        for id in ids {
            let job = try watch.wait(for: id, store) { $0.status.isTerminal }
            XCTAssertEqual(job.status, .succeeded)
            XCTAssertNil(job.resultsExpiredAt, "finished just now: kept")
        }
        // A retention pass after they finished keeps them: they are 0.2 s old, not a day.
        let mark = events.count
        clock.advance(by: 0.2)
        events.wait(after: mark) { $0 == .servicePass(.retention, changed: 0) }
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM jobs WHERE results_expired_at IS NOT NULL"), "0")
        let recent = try enqueue(1)
        XCTAssertEqual(try watch.wait(for: recent, store) { $0.status.isTerminal }.status, .succeeded)
        try TestDatabase.psql(url, "UPDATE jobs SET finished_at = finished_at - interval '2 days' WHERE id <> '\(recent.uuidString)'")
        clock.advance(by: 0.2)
        for id in ids {
            let job = try watch.wait(for: id, store) { $0.resultsExpiredAt != nil }
            XCTAssertNotNil(job.resultsExpiredAt, "expired by the worker's maintenance")
            XCTAssertEqual(job.status, .succeeded)
            XCTAssertEqual(try store.resultPaths(id: id), [])
        }
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM job_inputs"), "1", "only the recent job's frame is left")
        XCTAssertEqual(try store.resultPaths(id: recent), ["checksum/0000.txt"])
    }

    func testAnIdleWorkerIsWokenByTheEnqueueNotification() throws {
        // The clock never moves, so no poll fires: only the notification can wake the slot.
        try startWorker([ChecksumProcessor()], configuration())
        guard let listening = events.wait(for: { $0 == .listening }) else { return }
        events.wait(after: listening) { $0 == .slotIdle(slot: 0) }
        let id = try enqueue(1)
        XCTAssertEqual(try watch.wait(for: id, store) { $0.status.isTerminal }.status, .succeeded)
    }

    func testAPollWakesTheSlotsForAJobWhoseBackoffEnded() throws {
        // A job retried with a 5 s backoff: its backoff ends without a notification, so the poll finds it.
        let id = try enqueue(1)
        let earlier = WorkerQueue(url: url, clock: clock)
        let first = try XCTUnwrap(try earlier.claim(workerId: "earlier", leaseSeconds: 30))
        XCTAssertEqual(try earlier.retry(first, error: JobErrorInfo(code: "processing_failed", message: "once"),
                                         backoff: RetryBackoff(base: 5, cap: 5)), .queued)
        try startWorker([ChecksumProcessor()], configuration())
        guard let listening = events.wait(for: { $0 == .listening }) else { return }
        events.wait(after: listening) { $0 == .slotIdle(slot: 0) }
        XCTAssertEqual(try store.job(id: id)?.status, .queued, "still backing off")
        let mark = events.count
        clock.advance(by: 5)
        events.wait(after: mark) { $0 == .servicePass(.wakeups, changed: 0) }
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(try XCTUnwrap(job.startedAt).timeIntervalSince(first.record.startedAt!), 5, accuracy: 1e-6,
                       "claimed at the poll, when the clock reached the backoff's end")
    }

    func testTheLeaseReaperRequeuesTheJobOfAWorkerThatStoppedHeartbeating() throws {
        let id = try enqueue(1)
        let dead = try XCTUnwrap(try WorkerQueue(url: url, clock: clock).claim(workerId: "dead", leaseSeconds: 1))
        try startWorker([ChecksumProcessor()], configuration())
        events.wait { $0 == .servicePass(.leaseReaper, changed: 0) }
        XCTAssertEqual(try store.job(id: id)?.status, .running, "the lease holds until it runs out")
        let mark = events.count
        clock.advance(by: 1.5)
        events.wait(after: mark) { $0 == .servicePass(.leaseReaper, changed: 1) }
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 2, "the dead worker's attempt counts")
        XCTAssertEqual(job.lease, dead.lease + 1)
        XCTAssertEqual(job.workerId, "test-\(schema)/0")
    }

    func testCancellingARunningJobStopsItWithinSeconds() throws {
        let id = try enqueue(100)
        let processor = ChecksumProcessor(holdAt: 2)
        try startWorker([processor], configuration())
        processor.gate.waitUntilHeld()
        XCTAssertEqual(try store.job(id: id)?.status, .running)
        let requested = clock.now()
        _ = try store.cancel(id: id)
        // The next heartbeat (0.2 s of the clock) reads the request and the network stops.
        clock.advance(by: 0.2)
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .cancelled)
        XCTAssertEqual(try XCTUnwrap(job.finishedAt).timeIntervalSince(requested), 0.2, accuracy: 1e-6,
                       "stopped at the first heartbeat after the request")
        XCTAssertLessThan(job.framesDone, 100)
        XCTAssertEqual(try store.resultPaths(id: id), [])
    }

    func testBadInputFailsWithoutRetries() throws {
        let store = try JobStore(url: url, maxAttempts: 3, clock: clock)
        let id = try enqueue(2, bad: true, into: store)
        let processor = ChecksumProcessor()
        try startWorker([processor], configuration())
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .failed)
        XCTAssertEqual(job.attempt, 1)
        XCTAssertEqual(job.error, JobErrorInfo(code: "bad_input", message: "frame 0000: not a PNG"))
        // The slot looked for work again after recording the failure and found none.
        guard let ended = events.wait(for: { $0 == .jobEnded(slot: 0, job: id) }) else { return }
        events.wait(after: ended) { $0 == .slotIdle(slot: 0) }
        XCTAssertEqual(processor.callCount, 1)
    }

    func testFailuresAreRetriedUpToTheAttemptLimitThenFailWithTheLastError() throws {
        let store = try JobStore(url: url, maxAttempts: 2, clock: clock)
        let failing = try enqueue(1, into: store)
        let processor = ChecksumProcessor(failures: 2)
        try startWorker([processor], configuration())
        let job = try watch.wait(for: failing, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .failed)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(job.error?.code, "processing_failed")
        XCTAssertTrue(job.error?.message.contains("induced failure 2") ?? false, "\(String(describing: job.error))")
        XCTAssertEqual(processor.callCount, 2)

        // One failure, then success on the retry.
        let flaky = try enqueue(1, into: store)
        let recovered = try watch.wait(for: flaky, store) { $0.status.isTerminal }
        XCTAssertEqual(recovered.status, .succeeded)
        XCTAssertEqual(recovered.attempt, 1, "the processor's failures were used up by the first job")
    }

    func testStopHandsTheRunningJobBackWithoutSpendingAnAttempt() throws {
        let id = try enqueue(100)
        let processor = ChecksumProcessor(holdAt: 1)
        let worker = try startWorker([processor], configuration(onStop: .handBack))
        processor.gate.waitUntilHeld()
        worker.stop()
        XCTAssertEqual(workers.last?.join(), true, "run() returns after the hand-back")
        let job = try XCTUnwrap(try store.job(id: id))
        XCTAssertEqual(job.status, .queued)
        XCTAssertEqual(job.attempt, 0)

        try startWorker([ChecksumProcessor()], configuration())
        XCTAssertEqual(try watch.wait(for: id, store) { $0.status.isTerminal }.status, .succeeded)
    }

    func testStopCanLetTheRunningJobFinish() throws {
        let id = try enqueue(5)
        clock.advance(by: 0.001)  // created later, so claimed second
        let other = try enqueue(1)
        let processor = ChecksumProcessor(holdAt: 1)
        let worker = try startWorker([processor], configuration(onStop: .finish))
        processor.gate.waitUntilHeld()
        worker.stop()
        processor.gate.release()
        XCTAssertEqual(workers.last?.join(), true)
        XCTAssertEqual(try store.job(id: id)?.status, .succeeded)
        XCTAssertEqual(try store.job(id: other)?.status, .queued, "no claims after the stop")
    }

    // The two tests below restart a server under the worker, so they run on real time: reconnection backoff
    // is a real pause. They still wait only for events.

    func testAWorkerStartsWhileTheDatabaseIsDownAndPicksUpWhenItComesBack() throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        let (privateURL, privateSchema) = try TestDatabase.makeSchema("down", server: cluster.serverURL)
        try Migrator(url: privateURL).run()
        try cluster.stop()
        try startWorker([ChecksumProcessor()], configuration(), url: privateURL, clock: SystemClock.shared)
        events.wait { if case .databaseUnreachable = $0 { return true } else { return false } }
        try cluster.restart()
        let store = try JobStore(url: privateURL)
        let watch = try JobWatch(url: privateURL, schema: privateSchema)
        let id = try enqueue(1, into: store)
        XCTAssertEqual(try watch.wait(for: id, store) { $0.status.isTerminal }.status, .succeeded)
    }

    func testADatabaseRestartUnderARunningJobDoesNotLoseIt() throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        let (privateURL, privateSchema) = try TestDatabase.makeSchema("restart", server: cluster.serverURL)
        try Migrator(url: privateURL).run()
        let store = try JobStore(url: privateURL)
        let id = try enqueue(15, into: store)
        var config = configuration()
        config.leaseSeconds = 60  // far longer than the restart, so the lease survives it
        config.heartbeatInterval = 0.3
        let processor = ChecksumProcessor(holdAt: 2)
        try startWorker([processor], config, url: privateURL, clock: SystemClock.shared)
        processor.gate.waitUntilHeld()
        try cluster.restart()
        processor.gate.release()
        let watch = try JobWatch(url: privateURL, schema: privateSchema)
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 1, "the restart cost no attempt")
        XCTAssertEqual(processor.callCount, 1)
        XCTAssertEqual(try store.resultPaths(id: id).count, 15)
    }
}
