// The worker's mechanics in-process against a real PostgreSQL, with a cheap processor instead of the network.
// Time is a `ManualClock` the test moves (except where a test restarts the server, which runs on real time):
// heartbeats, polls, the lease reaper and retention run exactly when the test advances it, and every wait is
// for an event (a row change, a worker event, the fake network at a frame), never for seconds to pass.
import Foundation
@testable import JobQueue
import Logging
import Media
import QueueTestSupport
import TestSupport
@testable import Worker
import XCTest

/// Does real but cheap work: a checksum of each frame's bytes as its 1 × 1 "disparity", checking for
/// cancellation before each frame as the network does between iterations, and optionally held before one
/// frame by a `FrameGate`. One call per window.
final class ChecksumProcessor: JobProcessor {
    let failures: Int
    let gate: FrameGate
    private let lock = NSLock()
    private var calls = 0

    /// `gate` may be shared by several processors (it holds whichever reaches its frame first).
    init(failures: Int = 0, holdAt frame: Int? = nil, gate: FrameGate? = nil, barrier: Barrier? = nil) {
        self.failures = failures
        self.gate = gate ?? FrameGate(holdAt: frame)
        self.barrier = barrier
    }

    /// Keeps every processor's first window until all of them have one, so that several workers surely run
    /// windows of one job.
    let barrier: Barrier?

    var callCount: Int { lock.withLock { calls } }

    func process(window: ClaimedWindow, frames: [InputFrame], progress: @escaping (Int, Int) -> Void,
                 isCancelled: @escaping () -> Bool) throws -> [FrameResult] {
        let call = lock.withLock { calls += 1; return calls }
        if call == 1 { barrier?.arrive() }
        var sums: [Float] = []
        for (done, frame) in frames.enumerated() {
            if frame.left.starts(with: Array("BAD".utf8)) { throw BadJobInput("frame \(frame.name): not a PNG") }
            try gate.pass(frame.index, isCancelled: isCancelled)
            if isCancelled() { throw CancellationError() }
            sums.append(Float(Self.checksum(frame)))
            progress(done + 1, frames.count)
        }
        if call <= failures { throw NSError(domain: "test", code: call, userInfo: [NSLocalizedDescriptionKey: "induced failure \(call)"]) }
        // Like the network's, a frame's result depends on the whole window it ran in: a frame stored from the
        // wrong window would differ.
        let context = sums.reduce(0, +)
        let kept = window.keptPositions
        return try WindowResults.make(window, names: kept.map { frames[$0].name }, disparity: kept.map { sums[$0] * 4096 + context },
                                      height: 1, width: 1)
    }

    static func checksum(_ frame: InputFrame) -> UInt32 {
        (frame.left + frame.right).reduce(UInt32(0)) { $0 &+ UInt32($1) }
    }
}

/// Holds in every window it runs (at the window's first frame) until the run is cancelled.
final class HoldingProcessor: JobProcessor {
    let gate: FrameGate
    let barrier: Barrier

    init(gate: FrameGate, barrier: Barrier) {
        self.gate = gate
        self.barrier = barrier
    }

    func process(window: ClaimedWindow, frames: [InputFrame], progress: @escaping (Int, Int) -> Void,
                 isCancelled: @escaping () -> Bool) throws -> [FrameResult] {
        barrier.arrive()
        gate.hold(at: frames[0].index)
        try gate.pass(frames[0].index, isCancelled: isCancelled)
        throw CancellationError()
    }
}

/// Lets `count` threads through together, once each has arrived (or fails the test at the hang guard).
final class Barrier: @unchecked Sendable {
    private let condition = NSCondition()
    private let count: Int
    private var arrived = 0

    init(_ count: Int) {
        self.count = count
    }

    func arrive() {
        condition.withLock {
            arrived += 1
            condition.broadcast()
            let deadline = Date(timeIntervalSinceNow: hangGuard)
            while arrived < count {
                guard condition.wait(until: deadline) else { XCTFail("only \(arrived) of \(count) arrived"); return }
            }
        }
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
    /// `polling: false` sets a poll interval this clock never reaches: only notifications (and backoffs
    /// ending) wake an idle slot.
    func configuration(concurrency: Int = 1, onStop: WorkerConfiguration.StopBehaviour = .handBack,
                       polling: Bool = true) -> WorkerConfiguration {
        WorkerConfiguration(workerId: "test-\(schema)", concurrency: concurrency, leaseSeconds: 1, heartbeatInterval: 0.2,
                            pollInterval: polling ? 0.5 : 1e9, reapInterval: 0.3, backoff: RetryBackoff(base: 0, cap: 0), onStop: onStop,
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

    /// 1 × 1 PNG frames (the finishing step decodes the left ones for `video/`), or undecodable ones.
    func frames(_ count: Int, bad: Bool = false) -> [InputFrame] {
        (0..<count).map { index in
            func png(_ pixel: [UInt8]) -> Data { try! PNG.encodeRGB8(RGBImage(width: 1, height: 1, pixels: pixel)) }
            return InputFrame(index: index, name: String(format: "%04d", index),
                              left: bad ? Data("BAD".utf8) : png([UInt8(index & 0xFF), UInt8(index >> 8), 2]),
                              right: png([3, 4, UInt8(index & 0xFF)]))
        }
    }

    /// The job's disparity.npy as floats.
    func disparity(_ id: UUID, store: JobStore? = nil) throws -> [Float] {
        let data = try XCTUnwrap(try (store ?? self.store).result(id: id, path: "disparity.npy"))
        let header = Int(data[data.startIndex + 8]) | Int(data[data.startIndex + 9]) << 8
        return data.dropFirst(10 + header).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// The per-frame kinds only: these tests are about the queue, and the MP4s of 1 × 1 frames (VideoJobTests
    /// covers the MP4s) would only add two encoders per job.
    static let frameOutputs: Set<ResultKind> = [.npy, .disparity, .color, .video]

    func enqueue(_ count: Int, bad: Bool = false, into store: JobStore? = nil) throws -> UUID {
        try (store ?? self.store).enqueue(parameters: JobParameters(iters: 2, kernelSize: 3, outputs: Self.frameOutputs),
                                          frames: frames(count, bad: bad),
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
            XCTAssertEqual(try store.resultPaths(id: id), ["color/0000.png", "color/0001.png", "disparity.npy",
                                                           "disparity/0000.png", "disparity/0001.png", "video/0000.png", "video/0001.png"])
            let sums = frames(2).map { Float(ChecksumProcessor.checksum($0)) }
            XCTAssertEqual(try disparity(id), sums.map { $0 * 4096 + sums.reduce(0, +) }, "one window of both frames")
        }
        XCTAssertEqual(processors.map(\.callCount).reduce(0, +), 10, "one window each, and none ran twice")
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
        // A pass may be under way while the rows age, and expire some of them before the clock moves: count
        // what every pass reports from here on. A pass deletes its jobs' rows (in batches) before it reports.
        let expiring = events.count
        try TestDatabase.psql(url, "UPDATE jobs SET finished_at = finished_at - interval '2 days' WHERE id <> '\(recent.uuidString)'")
        clock.advance(by: 0.2)
        var expired = 0
        events.wait(after: expiring) { event in
            if case .servicePass(.retention, let changed) = event { expired += changed }
            return expired == ids.count
        }
        for id in ids {
            let job = try watch.wait(for: id, store) { $0.resultsExpiredAt != nil }
            XCTAssertNotNil(job.resultsExpiredAt, "expired by the worker's maintenance")
            XCTAssertEqual(job.status, .succeeded)
            XCTAssertEqual(try store.resultPaths(id: id), [])
        }
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM job_inputs"), "1", "only the recent job's frame is left")
        XCTAssertEqual(try store.resultPaths(id: recent), ["color/0000.png", "disparity.npy", "disparity/0000.png", "video/0000.png"])
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
        // A job retried with a 5 s backoff before the worker started: its slot waits no longer than the
        // backoff, and the poll fires at the same moment.
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
        XCTAssertEqual(try TestDatabase.psql(url, """
            SELECT extract(epoch FROM w.started_at - j.started_at) FROM job_windows AS w, jobs AS j WHERE w.kind = 'window'
            """), "5.000000", "claimed again when the clock reached the backoff's end")
        _ = first
    }

    /// Polling off (its interval never comes on this clock): another worker's retry notifies, the idle slot
    /// finds the window backing off and wakes exactly when the backoff ends.
    func testWithoutPollingARetryIsClaimedWhenItsBackoffEnds() throws {
        let id = try enqueue(1)
        let earlier = WorkerQueue(url: url, clock: clock)
        let first = try XCTUnwrap(try earlier.claim(workerId: "earlier", leaseSeconds: 30))
        try startWorker([ChecksumProcessor()], configuration(polling: false))
        guard let listening = events.wait(for: { $0 == .listening }) else { return }
        events.wait(after: listening) { $0 == .slotIdle(slot: 0) }
        let mark = events.count
        XCTAssertEqual(try earlier.retry(first, error: JobErrorInfo(code: "processing_failed", message: "once"),
                                         backoff: RetryBackoff(base: 5, cap: 5)), .queued)
        // The retry's notification woke the slot, which found nothing claimable yet and waits again.
        events.wait(after: mark) { $0 == .slotIdle(slot: 0) }
        XCTAssertEqual(try store.job(id: id)?.status, .queued, "still backing off")
        clock.advance(by: 5)
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(try TestDatabase.psql(url, """
            SELECT extract(epoch FROM w.started_at - j.started_at) FROM job_windows AS w, jobs AS j WHERE w.kind = 'window'
            """), "5.000000", "claimed when the backoff ended")
        XCTAssertFalse(events.all.contains { if case .servicePass(.wakeups, _) = $0 { return true } else { return false } }, "no poll ran")
    }

    /// Issue 17's proof, polling off: a dead worker's window, re-queued by the lease reaper (with a 2 s
    /// backoff), is claimed through the reaper's notification and the backoff's end alone.
    func testWithoutPollingALeaseReapedWindowIsClaimedThroughTheNotification() throws {
        let id = try enqueue(1)
        let dead = try XCTUnwrap(try WorkerQueue(url: url, clock: clock).claim(workerId: "dead", leaseSeconds: 1))
        var config = configuration(polling: false)
        config.backoff = RetryBackoff(base: 2, cap: 2)
        try startWorker([ChecksumProcessor()], config)
        guard let listening = events.wait(for: { $0 == .listening }) else { return }
        events.wait(after: listening) { $0 == .slotIdle(slot: 0) }
        let mark = events.count
        clock.advance(by: 1.5)
        events.wait(after: mark) { $0 == .servicePass(.leaseReaper, changed: 1) }
        XCTAssertEqual(try store.windows(id: id).first?.status, .queued, "re-queued, backing off")
        clock.advance(by: 2)
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 2, "the dead worker's attempt counts")
        XCTAssertEqual(try store.windows(id: id).first?.workerId, "test-\(schema)/0")
        XCTAssertEqual(try TestDatabase.psql(url, """
            SELECT extract(epoch FROM w.started_at - j.started_at) FROM job_windows AS w, jobs AS j WHERE w.kind = 'window'
            """), "3.500000", "claimed at the end of the backoff that followed the reap (lease 1 s, reaped at 1.5 s, backoff 2 s)")
        XCTAssertFalse(events.all.contains { if case .servicePass(.wakeups, _) = $0 { return true } else { return false } }, "no poll ran")
        _ = dead
    }

    /// Polling off: a window handed back by a stopping worker wakes an idle one, which runs it at once.
    func testWithoutPollingAHandedBackWindowWakesAnIdleWorker() throws {
        let id = try enqueue(1)
        let holding = ChecksumProcessor(holdAt: 0)
        var first = configuration(polling: false)
        first.workerId = "a-\(schema)"
        let stopping = try startWorker([holding], first)
        holding.gate.waitUntilHeld()
        let mark = events.count
        var second = configuration(polling: false)
        second.workerId = "b-\(schema)"
        try startWorker([ChecksumProcessor()], second)
        // The first worker's only slot holds the window, so this is the second worker's slot.
        events.wait(after: mark) { $0 == .slotIdle(slot: 0) }
        stopping.stop()
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 1, "the hand-back gave its attempt back")
        XCTAssertEqual(try store.windows(id: id).first?.workerId, "b-\(schema)/0")
        XCTAssertFalse(events.all.contains { if case .servicePass(.wakeups, _) = $0 { return true } else { return false } }, "no poll ran")
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
        let window = try XCTUnwrap(try store.windows(id: id).first)
        XCTAssertEqual(window.attempt, 2)
        XCTAssertEqual(window.workerId, "test-\(schema)/0")
        XCTAssertEqual(dead.lease, 1)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT lease FROM job_windows WHERE window_index = 0"), "2", "the claim after the dead one")
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
        XCTAssertEqual(job.error, JobErrorInfo(code: "bad_input", message: "window 0 (frames 0-1): frame 0000: not a PNG"))
        // The slot looked for work again after recording the failure and found none.
        guard let ended = events.wait(for: { $0 == .windowEnded(slot: 0, job: id, window: 0, kind: .window) }) else { return }
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

    /// With windows the unit of work, "finish" lets the running window finish and store its frames.
    func testStopCanLetTheRunningWindowFinish() throws {
        let id = try enqueue(5)
        clock.advance(by: 0.001)  // created later, so claimed second
        let other = try enqueue(1)
        let processor = ChecksumProcessor(holdAt: 1)
        let worker = try startWorker([processor], configuration(onStop: .finish))
        processor.gate.waitUntilHeld()
        worker.stop()
        processor.gate.release()
        XCTAssertEqual(workers.last?.join(), true)
        let windows = try store.windows(id: id)
        XCTAssertEqual(windows.first?.status, .succeeded, "the held window finished and was stored")
        XCTAssertEqual(windows.dropFirst().map(\.status), Array(repeating: .queued, count: windows.count - 1), "no claims after the stop")
        XCTAssertEqual(try store.job(id: id)?.status, .running, "part of it is stored")
        XCTAssertEqual(try store.job(id: id)?.framesDone, windows.first?.resultFrames.count)
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
        XCTAssertEqual(processor.callCount, WindowAssignment.plan(frames: 15, kernelSize: 3).count, "each window once")
        XCTAssertEqual(try store.resultPaths(id: id).count, 3 * 15 + 1, "disparity/, color/ and video/ per frame, and disparity.npy")
    }

    /// Issue 13's proof in miniature: one 480-frame job (kernel 10) run by three workers. Windows go to all
    /// three (shown in `windows`), a frame read while the job still runs equals the same frame after it
    /// succeeded, and the disparity is bit-identical to one worker's run of the same frames.
    func testThreeWorkersShareOneLongJobAndGiveOneWorkersDisparity() throws {
        let count = 480
        let parameters = JobParameters(iters: 2, kernelSize: 10, outputs: Self.frameOutputs)
        let shared = try store.enqueue(parameters: parameters, frames: frames(count), idempotencyKey: nil, payloadDigest: nil).job.id
        let plan = WindowAssignment.plan(frames: count, kernelSize: 10)
        // The window that gives the last frame is held until the test has read a frame of the running job.
        let gate = FrameGate(holdAt: count - 1)
        let barrier = Barrier(3)
        for name in ["a", "b", "c"] {
            var config = configuration()
            config.workerId = "\(name)-\(schema)"
            config.leaseSeconds = 600  // the clock never moves here: no lease runs out
            try startWorker([ChecksumProcessor(gate: gate, barrier: barrier)], config)
        }
        gate.waitUntilHeld()
        let running = try watch.wait(for: shared, store) { $0.framesDone >= count - 10 }
        XCTAssertEqual(running.status, .running)
        let early = try XCTUnwrap(try store.result(id: shared, path: "disparity/0007.png"), "a stored frame is readable while the job runs")
        XCTAssertNil(try store.result(id: shared, path: "color/0007.png"), "colour waits for the finishing step")
        gate.release()
        let done = try watch.wait(for: shared, store) { $0.status.isTerminal }
        XCTAssertEqual(done.status, .succeeded)
        XCTAssertEqual(done.framesDone, count)
        XCTAssertEqual(try store.result(id: shared, path: "disparity/0007.png"), early, "the same bytes after success")
        let windows = try store.windows(id: shared)
        XCTAssertEqual(windows.count, plan.count + 1)
        XCTAssertEqual(Set(windows.compactMap(\.workerId).map { $0.prefix(1) }), ["a", "b", "c"], "every worker ran windows")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), count(DISTINCT frame_index) FROM job_frames WHERE job_id = '\(shared)'"),
                       "\(count)|\(count)", "every frame stored once")
        let three = try XCTUnwrap(try store.result(id: shared, path: "disparity.npy"))

        // One worker alone, on the same frames.
        for handle in workers { handle.worker.stop(); XCTAssertTrue(handle.join()) }
        workers.removeAll()
        let alone = try store.enqueue(parameters: parameters, frames: frames(count), idempotencyKey: nil, payloadDigest: nil).job.id
        try startWorker([ChecksumProcessor()], configuration())
        XCTAssertEqual(try watch.wait(for: alone, store) { $0.status.isTerminal }.status, .succeeded)
        XCTAssertEqual(Set(try store.windows(id: alone).compactMap(\.workerId)).count, 1)
        let one = try XCTUnwrap(try store.result(id: alone, path: "disparity.npy"))
        XCTAssertEqual(one.count, FrameFiles.npySize(frames: count, height: 1, width: 1))
        XCTAssertTrue(one == three, "bit-identical disparity.npy")
    }

    /// Chaos in miniature, on real time against a private server: four windows claimed by workers that die at
    /// once (they never heartbeat, as after a SIGKILL), three live workers, and the server restarted under
    /// them mid-video. The job succeeds with every frame stored once, only the dead workers' windows ran
    /// again, and the disparity is bit-identical to a clean run.
    func testDeadWorkersAndADatabaseRestartMidVideoChangeNothingButTheRerunWindows() throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        let (privateURL, privateSchema) = try TestDatabase.makeSchema("chaos", server: cluster.serverURL)
        try Migrator(url: privateURL).run()
        let store = try JobStore(url: privateURL)
        let count = 120
        let parameters = JobParameters(iters: 2, kernelSize: 6, outputs: Self.frameOutputs)
        let id = try store.enqueue(parameters: parameters, frames: frames(count), idempotencyKey: nil, payloadDigest: nil).job.id
        let dead = WorkerQueue(url: privateURL)
        let doomed = try (0..<4).map { _ in try XCTUnwrap(try dead.claim(workerId: "killed/0", leaseSeconds: 1)) }
        dead.disconnect()
        let gate = FrameGate(holdAt: 60)
        for name in ["a", "b", "c"] {
            var config = configuration()
            config.workerId = "\(name)-chaos"
            config.leaseSeconds = 60  // far longer than the restart: live windows keep their leases
            config.heartbeatInterval = 0.3
            try startWorker([ChecksumProcessor(gate: gate)], config, url: privateURL, clock: SystemClock.shared)
        }
        gate.waitUntilHeld()
        try cluster.restart()
        gate.release()
        let watch = try JobWatch(url: privateURL, schema: privateSchema)
        let done = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(done.status, .succeeded)
        let windows = try store.windows(id: id)
        let rerun = Set(doomed.map(\.index))
        XCTAssertEqual(Set(windows.filter { $0.attempt > 1 }.map(\.index)), rerun, "only the dead workers' windows ran again")
        XCTAssertTrue(windows.filter { rerun.contains($0.index) }.allSatisfy { $0.workerId?.hasSuffix("-chaos/0") ?? false })
        XCTAssertEqual(try TestDatabase.psql(privateURL, "SELECT count(*), count(DISTINCT frame_index) FROM job_frames"), "\(count)|\(count)")
        let chaotic = try XCTUnwrap(try store.result(id: id, path: "disparity.npy"))
        print("measured: chaos run re-ran \(rerun.count) of \(windows.count - 1) windows")

        for handle in workers { handle.worker.stop(); XCTAssertTrue(handle.join()) }
        workers.removeAll()
        let clean = try store.enqueue(parameters: parameters, frames: frames(count), idempotencyKey: nil, payloadDigest: nil).job.id
        try startWorker([ChecksumProcessor()], configuration(), url: privateURL, clock: SystemClock.shared)
        XCTAssertEqual(try watch.wait(for: clean, store) { $0.status.isTerminal }.status, .succeeded)
        XCTAssertTrue(try XCTUnwrap(try store.result(id: clean, path: "disparity.npy")) == chaotic, "bit-identical to a clean run")
    }

    /// Cancelling mid-video stops every running window at its next heartbeat and ends the job cancelled.
    func testCancellingMidVideoStopsEveryRunningWindow() throws {
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 10), frames: frames(100),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        let barrier = Barrier(3)
        // Every processor holds in the first window it runs, whichever that is, until the cancellation is seen.
        let gates = (0..<3).map { _ in FrameGate(holdAt: nil) }
        for (name, gate) in zip(["a", "b", "c"], gates) {
            var config = configuration()
            config.workerId = "\(name)-\(schema)"
            try startWorker([HoldingProcessor(gate: gate, barrier: barrier)], config)
        }
        for gate in gates { gate.waitUntilHeld() }
        XCTAssertEqual(try store.windows(id: id).filter { $0.status == .running }.count, 3)
        _ = try store.cancel(id: id)
        XCTAssertEqual(try store.job(id: id)?.status, .running, "three windows still run until their heartbeats")
        clock.advance(by: 0.2)
        let job = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .cancelled)
        XCTAssertEqual(Set(try store.windows(id: id).map(\.status)), [.cancelled], "every window, running or queued")
        XCTAssertEqual(try store.resultPaths(id: id), [])
    }
}
