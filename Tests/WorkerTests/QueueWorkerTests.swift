// The worker's mechanics in-process against a real PostgreSQL, with a cheap processor instead of the network.
import Foundation
import JobQueue
import Logging
import TestSupport
@testable import Worker
import XCTest

/// Does real but cheap work: a checksum of each frame's bytes, one frame every `frameSeconds`, checking
/// for cancellation between frames as the network does between iterations.
final class ChecksumProcessor: JobProcessor {
    let frameSeconds: Double
    let failures: Int
    private let lock = NSLock()
    private var calls = 0

    init(frameSeconds: Double = 0.01, failures: Int = 0) {
        self.frameSeconds = frameSeconds
        self.failures = failures
    }

    var callCount: Int { lock.withLock { calls } }

    func process(frames: [InputFrame], parameters: JobParameters, progress: @escaping (Int, Int) -> Void,
                 isCancelled: @escaping () -> Bool) throws -> [ResultBlob] {
        let call = lock.withLock { calls += 1; return calls }
        var results: [ResultBlob] = []
        for frame in frames {
            if frame.left.starts(with: Array("BAD".utf8)) { throw BadJobInput("frame \(frame.name): not a PNG") }
            let deadline = Date(timeIntervalSinceNow: frameSeconds)
            while Date() < deadline {
                if isCancelled() { throw CancellationError() }
                Thread.sleep(forTimeInterval: min(0.02, frameSeconds))
            }
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

    /// True once `run()` has returned (waiting up to `timeout` seconds the first time).
    func join(timeout: Double) -> Bool {
        if !joined { joined = done.wait(timeout: .now() + timeout) == .success }
        return joined
    }
}

final class QueueWorkerTests: XCTestCase {
    var url = ""
    var schema = ""
    var workers: [WorkerHandle] = []

    override func setUpWithError() throws {
        (url, schema) = try TestDatabase.makeSchema(name.filter(\.isLetter).suffix(24).description)
        try Migrator(url: url, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })).run()
    }

    override func tearDown() {
        for handle in workers {
            handle.worker.stop()
            XCTAssertTrue(handle.join(timeout: 30), "the worker stops")
        }
        TestDatabase.dropSchema(schema)
    }

    /// Fast timings so the tests take seconds: heartbeat 0.2 s, lease 1 s, no retry backoff.
    func configuration(concurrency: Int = 1, onStop: WorkerConfiguration.StopBehaviour = .handBack) -> WorkerConfiguration {
        WorkerConfiguration(workerId: "test-\(schema)", concurrency: concurrency, leaseSeconds: 1, heartbeatInterval: 0.2,
                            pollInterval: 0.5, reapInterval: 0.3, backoff: RetryBackoff(base: 0, cap: 0), onStop: onStop,
                            reconnectMin: 0.1, reconnectMax: 0.5)
    }

    @discardableResult
    func startWorker(_ processors: [JobProcessor], _ configuration: WorkerConfiguration, url: String? = nil) throws -> QueueWorker {
        var logger = Logger(label: "worker-test")
        logger.logLevel = .critical  // reconnection warnings are expected here
        let worker = try QueueWorker(url: url ?? self.url, processors: processors, configuration: configuration, logger: logger)
        workers.append(WorkerHandle(worker))
        return worker
    }

    func frames(_ count: Int, bad: Bool = false) -> [InputFrame] {
        (0..<count).map { index in
            InputFrame(index: index, name: String(format: "%04d", index),
                       left: bad ? Data("BAD".utf8) : Data([UInt8(index), 1, 2]), right: Data([3, 4, UInt8(index)]))
        }
    }

    /// Polls the job until `predicate` holds or `timeout` passes; returns the last record seen.
    func wait(for id: UUID, _ store: JobStore, timeout: Double = 20, until predicate: (JobRecord) -> Bool) throws -> JobRecord {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            let job = try XCTUnwrap(try store.job(id: id))
            if predicate(job) || Date() > deadline { return job }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func testTwoSlotsDrainAQueueAndEveryJobEndsWithItsResults() throws {
        let store = try JobStore(url: url)
        let ids = try (0..<10).map { _ in try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(2),
                                                            idempotencyKey: nil, payloadDigest: nil).job.id }
        let processors = [ChecksumProcessor(), ChecksumProcessor()]
        try startWorker(processors, configuration(concurrency: 2))
        for id in ids {
            let job = try wait(for: id, store) { $0.status.isTerminal }
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
        let store = try JobStore(url: url)
        let ids = try (0..<5).map { _ in try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(2),
                                                           idempotencyKey: nil, payloadDigest: nil).job.id }
        var config = configuration()
        config.resultRetention = 86_400
        config.retentionInterval = 0.2
        config.retentionBatchSize = 2  // five jobs take three batches
        try startWorker([ChecksumProcessor()], config)
        for id in ids {
            let job = try wait(for: id, store) { $0.status.isTerminal }
            XCTAssertEqual(job.status, .succeeded)
            XCTAssertNil(job.resultsExpiredAt, "finished just now: kept")
        }
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM jobs WHERE results_expired_at IS NOT NULL"), "0")
        let recent = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1),
                                       idempotencyKey: nil, payloadDigest: nil).job.id
        XCTAssertEqual(try wait(for: recent, store) { $0.status.isTerminal }.status, .succeeded)
        try TestDatabase.psql(url, "UPDATE jobs SET finished_at = now() - interval '2 days' WHERE id <> '\(recent.uuidString)'")
        for id in ids {
            let job = try wait(for: id, store) { $0.resultsExpiredAt != nil }
            XCTAssertNotNil(job.resultsExpiredAt, "expired by the worker's maintenance")
            XCTAssertEqual(job.status, .succeeded)
            XCTAssertEqual(try store.resultPaths(id: id), [])
        }
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM job_inputs"), "1", "only the recent job's frame is left")
        XCTAssertEqual(try store.resultPaths(id: recent), ["checksum/0000.txt"])
    }

    func testAnIdleWorkerIsWokenByTheEnqueueNotification() throws {
        let store = try JobStore(url: url)
        var config = configuration()
        config.pollInterval = 30  // only the notification can wake it in time
        try startWorker([ChecksumProcessor()], config)
        Thread.sleep(forTimeInterval: 0.5)  // let the slot go idle and the listener subscribe
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        XCTAssertEqual(try wait(for: id, store, timeout: 5) { $0.status.isTerminal }.status, .succeeded)
    }

    func testCancellingARunningJobStopsItWithinSeconds() throws {
        let store = try JobStore(url: url)
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(100),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        try startWorker([ChecksumProcessor(frameSeconds: 0.2)], configuration())
        let running = try wait(for: id, store) { $0.framesDone >= 2 }
        XCTAssertEqual(running.status, .running)
        let requested = Date()
        _ = try store.cancel(id: id)
        let job = try wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .cancelled)
        XCTAssertLessThan(Date().timeIntervalSince(requested), 5, "heartbeat 0.2 s + one frame 0.2 s, with a wide margin for a loaded machine")
        XCTAssertLessThan(job.framesDone, 100)
        XCTAssertEqual(try store.resultPaths(id: id), [])
    }

    func testBadInputFailsWithoutRetries() throws {
        let store = try JobStore(url: url, maxAttempts: 3)
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(2, bad: true),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        let processor = ChecksumProcessor()
        try startWorker([processor], configuration())
        let job = try wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .failed)
        XCTAssertEqual(job.attempt, 1)
        XCTAssertEqual(job.error, JobErrorInfo(code: "bad_input", message: "frame 0000: not a PNG"))
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(processor.callCount, 1)
    }

    func testFailuresAreRetriedUpToTheAttemptLimitThenFailWithTheLastError() throws {
        let store = try JobStore(url: url, maxAttempts: 2)
        let failing = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1),
                                        idempotencyKey: nil, payloadDigest: nil).job.id
        let processor = ChecksumProcessor(failures: 2)
        try startWorker([processor], configuration())
        let job = try wait(for: failing, store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .failed)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(job.error?.code, "processing_failed")
        XCTAssertTrue(job.error?.message.contains("induced failure 2") ?? false, "\(String(describing: job.error))")
        XCTAssertEqual(processor.callCount, 2)

        // One failure, then success on the retry.
        let flaky = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1),
                                      idempotencyKey: nil, payloadDigest: nil).job.id
        let recovered = try wait(for: flaky, store) { $0.status.isTerminal }
        XCTAssertEqual(recovered.status, .succeeded)
        XCTAssertEqual(recovered.attempt, 1, "the processor's failures were used up by the first job")
    }

    func testStopHandsTheRunningJobBackWithoutSpendingAnAttempt() throws {
        let store = try JobStore(url: url)
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(100),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        let worker = try startWorker([ChecksumProcessor(frameSeconds: 0.1)], configuration(onStop: .handBack))
        _ = try wait(for: id, store) { $0.framesDone >= 1 }
        worker.stop()
        XCTAssertEqual(workers.last?.join(timeout: 10), true, "run() returns after the hand-back")
        let job = try XCTUnwrap(try store.job(id: id))
        XCTAssertEqual(job.status, .queued)
        XCTAssertEqual(job.attempt, 0)

        try startWorker([ChecksumProcessor(frameSeconds: 0)], configuration())
        XCTAssertEqual(try wait(for: id, store) { $0.status.isTerminal }.status, .succeeded)
    }

    func testStopCanLetTheRunningJobFinish() throws {
        let store = try JobStore(url: url)
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(5),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        let other = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1),
                                      idempotencyKey: nil, payloadDigest: nil).job.id
        let worker = try startWorker([ChecksumProcessor(frameSeconds: 0.2)], configuration(onStop: .finish))
        _ = try wait(for: id, store) { $0.framesDone >= 1 }
        worker.stop()
        XCTAssertEqual(workers.last?.join(timeout: 10), true)
        XCTAssertEqual(try store.job(id: id)?.status, .succeeded)
        XCTAssertEqual(try store.job(id: other)?.status, .queued, "no claims after the stop")
    }

    func testAWorkerStartsWhileTheDatabaseIsDownAndPicksUpWhenItComesBack() throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        let (privateURL, _) = try TestDatabase.makeSchema("down", server: cluster.serverURL)
        try Migrator(url: privateURL).run()
        try cluster.stop()
        try startWorker([ChecksumProcessor()], configuration(), url: privateURL)
        Thread.sleep(forTimeInterval: 1)
        try cluster.restart()
        let store = try JobStore(url: privateURL)
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        XCTAssertEqual(try wait(for: id, store, timeout: 10) { $0.status.isTerminal }.status, .succeeded)
    }

    func testADatabaseRestartUnderARunningJobDoesNotLoseIt() throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        let (privateURL, _) = try TestDatabase.makeSchema("restart", server: cluster.serverURL)
        try Migrator(url: privateURL).run()
        let store = try JobStore(url: privateURL)
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(15),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        var config = configuration()
        config.leaseSeconds = 10  // longer than the restart, so the lease survives it
        config.heartbeatInterval = 0.3
        let processor = ChecksumProcessor(frameSeconds: 0.2)
        try startWorker([processor], config, url: privateURL)
        _ = try wait(for: id, store) { $0.framesDone >= 2 }
        try cluster.restart()
        let job = try wait(for: id, store, timeout: 30) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded)
        XCTAssertEqual(job.attempt, 1, "the restart cost no attempt")
        XCTAssertEqual(processor.callCount, 1)
        XCTAssertEqual(try store.resultPaths(id: id).count, 15)
    }
}
