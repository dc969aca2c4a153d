// The API's side of the queue against a real PostgreSQL.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class JobStoreTests: QueueTestCase {
    func testEnqueueStoresTheJobAndItsFramesOutsideTheJobRow() throws {
        let store = try JobStore(url: url)
        let parameters = JobParameters(iters: 3, kernelSize: 4, focalPx: 720.5, baselineM: 0.12)
        let (job, created) = try store.enqueue(parameters: parameters, frames: frames(3), idempotencyKey: nil, payloadDigest: nil)
        XCTAssertTrue(created)
        XCTAssertEqual(job.status, .queued)
        XCTAssertEqual(job.parameters, parameters, "focal length and baseline survive the round trip exactly")
        XCTAssertEqual(job.framesTotal, 3)
        XCTAssertEqual(job.attempt, 0)
        XCTAssertEqual(job.maxAttempts, 3)
        XCTAssertNil(job.startedAt)
        XCTAssertEqual(try store.job(id: job.id), job)
        XCTAssertNil(try store.job(id: UUID()))
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), sum(length(left_png)) FROM job_inputs"), "3|48")
        let queue = WorkerQueue(url: url)
        let claimed = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try queue.inputs(of: claimed), frames(3), "the worker reads back the exact PNG bytes")
    }

    func testBadParametersAndFramesAreRejectedWithAReason() throws {
        let store = try JobStore(url: url)
        let cases: [(JobParameters, [InputFrame])] = [
            (JobParameters(iters: 0, kernelSize: 3), frames(2)),
            (JobParameters(iters: 2, kernelSize: 1), frames(2)),
            (JobParameters(iters: 2, kernelSize: 3, focalPx: 500, baselineM: nil), frames(2)),
            (JobParameters(iters: 2, kernelSize: 3, focalPx: -1, baselineM: 0.1), frames(2)),
            (JobParameters(iters: 2, kernelSize: 3), []),
            (JobParameters(iters: 2, kernelSize: 3), Array(frames(3).reversed())),
        ]
        for (parameters, frames) in cases {
            XCTAssertThrowsError(try store.enqueue(parameters: parameters, frames: frames, idempotencyKey: nil, payloadDigest: nil)) { error in
                switch error as? JobQueueError {
                case .invalidParameters?, .invalidInput?: break
                default: XCTFail("expected a validation error for \(parameters), got \(error)")
                }
            }
        }
        XCTAssertEqual(try store.statusCounts()[.queued], 0, "nothing was stored")
    }

    /// `InferenceParameters` is the one rule; the schema's CHECK constraints mirror it, so a row the rule
    /// refuses cannot be stored even by hand, and every value the rule accepts can.
    func testTheSchemaChecksMirrorTheParameterRule() throws {
        let jobs = try JobStore(url: url)
        func store(_ parameters: JobParameters) throws -> JobRecord {
            try jobs.enqueue(parameters: parameters, frames: frames(1), idempotencyKey: nil, payloadDigest: nil).job
        }
        let itersEdges = [JobParameters.itersRange.lowerBound - 1, JobParameters.itersRange.lowerBound,
                          JobParameters.itersRange.upperBound, JobParameters.itersRange.upperBound + 1]
        let kernelEdges = [JobParameters.kernelSizeRange.lowerBound - 1, JobParameters.kernelSizeRange.lowerBound,
                           JobParameters.kernelSizeRange.upperBound, JobParameters.kernelSizeRange.upperBound + 1]
        for iters in itersEdges {
            for kernelSize in kernelEdges {
                for calibration in [(nil, nil), (500.0, 0.1), (-1.0, 0.1)] as [(Double?, Double?)] {
                    let parameters = JobParameters(iters: iters, kernelSize: kernelSize, focalPx: calibration.0, baselineM: calibration.1)
                    let ruleAccepts = (try? parameters.validate()) != nil
                    let sql = """
                        INSERT INTO jobs (id, status, iters, kernel_size, focal_px, baseline_m, max_attempts, frames_total)
                        VALUES (gen_random_uuid(), 'queued', \(iters), \(kernelSize), \(calibration.0.map { "\($0)" } ?? "NULL"),
                                \(calibration.1.map { "\($0)" } ?? "NULL"), 1, 1)
                        """
                    let schemaAccepts = (try? TestDatabase.psql(url, sql)) != nil
                    XCTAssertEqual(schemaAccepts, ruleAccepts, "\(parameters)")
                    // The store asks the rule and words its refusal as HTTP spells the field.
                    XCTAssertEqual((try? store(parameters)) != nil, ruleAccepts, "\(parameters)")
                }
            }
        }
        XCTAssertThrowsError(try store(JobParameters(iters: 101, kernelSize: 3))) { error in
            XCTAssertEqual(error as? JobQueueError, .invalidParameters("iters must be in 2...100, got 101"))
        }
        XCTAssertThrowsError(try store(JobParameters(iters: 2, kernelSize: 65))) { error in
            XCTAssertEqual(error as? JobQueueError, .invalidParameters("kernel_size must be in 2...64, got 65"))
        }
    }

    func testIdempotencyKeyReplaysOrConflicts() throws {
        let store = try JobStore(url: url)
        let first = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(2),
                                      idempotencyKey: "key-1", payloadDigest: "sha256:aa")
        let replay = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(2),
                                       idempotencyKey: "key-1", payloadDigest: "sha256:aa")
        XCTAssertTrue(first.created)
        XCTAssertFalse(replay.created)
        XCTAssertEqual(replay.job.id, first.job.id)
        XCTAssertThrowsError(try store.enqueue(parameters: JobParameters(iters: 5, kernelSize: 3), frames: frames(2),
                                               idempotencyKey: "key-1", payloadDigest: "sha256:bb")) { error in
            XCTAssertEqual(error as? JobQueueError, .idempotencyConflict(key: "key-1", existing: first.job.id))
        }
        XCTAssertEqual(try store.statusCounts()[.queued], 1)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM job_inputs"), "2", "the replay stored no frames")
    }

    func testListPagesNewestFirstWithACursorAndAStatusFilter() throws {
        let store = try JobStore(url: url)
        var ids: [UUID] = []
        for _ in 0..<7 { ids.append(try enqueue(store).id) }
        _ = try store.cancel(id: ids[2])
        var seen: [UUID] = []
        var cursor: String?
        repeat {
            let page = try store.list(status: nil, limit: 3, after: cursor)
            XCTAssertLessThanOrEqual(page.jobs.count, 3)
            seen += page.jobs.map(\.id)
            cursor = page.next
        } while cursor != nil
        XCTAssertEqual(seen, ids.reversed(), "every job once, newest first")
        XCTAssertEqual(try store.list(status: .cancelled, limit: 10, after: nil).jobs.map(\.id), [ids[2]])
        XCTAssertEqual(try store.list(status: .queued, limit: 10, after: nil).jobs.count, 6)
        XCTAssertNil(try store.list(status: nil, limit: 7, after: nil).next, "no next page after the last job")
        XCTAssertThrowsError(try store.list(status: nil, limit: 3, after: "garbage")) {
            XCTAssertEqual($0 as? JobQueueError, .invalidCursor("garbage"))
        }
        XCTAssertThrowsError(try store.list(status: nil, limit: 0, after: nil))
    }

    func testCancellingAQueuedJobEndsItAtOnceAndAFinishedJobStaysAsItIs() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store)
        let cancelled = try XCTUnwrap(try store.cancel(id: job.id))
        XCTAssertEqual(cancelled.status, .cancelled)
        XCTAssertNotNil(cancelled.finishedAt)
        XCTAssertNil(try WorkerQueue(url: url).claim(workerId: "w", leaseSeconds: 30), "a cancelled job is never claimed")
        XCTAssertEqual(try store.cancel(id: job.id)?.status, .cancelled, "cancelling twice is harmless")
        XCTAssertNil(try store.cancel(id: UUID()))
    }

    func testDeleteRemovesInputsAndResults() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url)
        try runAll(queue)
        XCTAssertEqual(try store.resultPaths(id: job.id), ["color/0000.png", "color/0001.png", "disparity.npy",
                                                           "disparity/0000.png", "disparity/0001.png"])
        XCTAssertEqual(try store.result(id: job.id, path: "disparity/0001.png"), Data("png 1".utf8))
        XCTAssertNil(try store.result(id: job.id, path: "missing.png"))
        XCTAssertTrue(try store.delete(id: job.id))
        XCTAssertFalse(try store.delete(id: job.id))
        XCTAssertNil(try store.job(id: job.id))
        XCTAssertEqual(try TestDatabase.psql(url, """
            SELECT (SELECT count(*) FROM job_inputs) + (SELECT count(*) FROM job_frames) + (SELECT count(*) FROM job_windows)
            """), "0")
    }

    /// Counts frame buffers that are still allocated, through `Data`'s custom deallocator.
    private final class LiveBuffers: @unchecked Sendable {
        private let lock = NSLock()
        private var live = 0
        var count: Int { lock.lock(); defer { lock.unlock() }; return live }

        func make(_ size: Int, fill: UInt8) -> Data {
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 1)
            pointer.initializeMemory(as: UInt8.self, repeating: fill, count: size)
            lock.lock(); live += 1; lock.unlock()
            return Data(bytesNoCopy: pointer, count: size, deallocator: .custom { [self] pointer, _ in
                pointer.deallocate()
                lock.lock(); live -= 1; lock.unlock()
            })
        }
    }

    func testStreamingEnqueueAsksForOneFrameAtATimeAndStoresEach() throws {
        let store = try JobStore(url: url)
        let buffers = LiveBuffers()
        var asked: [Int] = []
        var liveWhenAsked: [Int] = []
        let (job, created) = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frameCount: 6,
                                               idempotencyKey: "stream", payloadDigest: "d") { index in
            asked.append(index)
            liveWhenAsked.append(buffers.count)
            return InputFrame(index: index, name: "\(index)", left: buffers.make(1000 + index, fill: UInt8(index)),
                              right: buffers.make(2000, fill: 9))
        }
        XCTAssertTrue(created)
        XCTAssertEqual(job.framesTotal, 6)
        XCTAssertEqual(asked, Array(0..<6), "frames are asked for once each, in order")
        // An array API holds all 12 buffers at once; here at most the previous pair may linger.
        XCTAssertLessThanOrEqual(liveWhenAsked.max() ?? .max, 2, "buffers alive when each frame was asked for: \(liveWhenAsked)")
        XCTAssertEqual(buffers.count, 0, "every frame was released")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), sum(length(left_png)), sum(length(right_png)) FROM job_inputs"),
                       "6|\(6 * 1000 + 15)|12000")

        var replayAsked = 0
        let replay = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frameCount: 6,
                                       idempotencyKey: "stream", payloadDigest: "d") { index in
            replayAsked += 1
            return InputFrame(index: index, name: "\(index)", left: Data([1]), right: Data([1]))
        }
        XCTAssertFalse(replay.created)
        XCTAssertEqual(replayAsked, 0, "a replay reads no frames")
    }

    func testAFrameErrorRollsTheJobBackAndIsRethrown() throws {
        struct ReadFailure: Error, Equatable {}
        let store = try JobStore(url: url)
        XCTAssertThrowsError(try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frameCount: 4,
                                               idempotencyKey: nil, payloadDigest: nil) { index in
            if index == 2 { throw ReadFailure() }
            return InputFrame(index: index, name: "\(index)", left: Data([1]), right: Data([2]))
        }) { error in
            XCTAssertEqual(error as? ReadFailure, ReadFailure(), "the source's own error: \(error)")
        }
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM job_inputs)"), "0")
    }

    func testStatusCountsCoverEveryStatus() throws {
        let store = try JobStore(url: url)
        for _ in 0..<3 { _ = try enqueue(store) }
        _ = try store.cancel(id: try enqueue(store).id)
        _ = try XCTUnwrap(try WorkerQueue(url: url).claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try store.statusCounts(), [.queued: 2, .running: 1, .succeeded: 0, .failed: 0, .cancelled: 1])
    }

    func testAStoreRecoversFromADroppedSession() throws {
        // A session name of this test's own, so only its sessions are killed (other tests run beside it).
        let store = try JobStore(url: url + "&application_name=\(schema)")
        let job = try enqueue(store)
        let killed = try TestDatabase.psql(url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '\(schema)'")
        XCTAssertEqual(killed, "1", "the store's pooled session was killed")
        XCTAssertEqual(try store.job(id: job.id)?.id, job.id, "the next call reconnects by itself")
    }

    func testAnUnreachableServerFailsAtInit() {
        XCTAssertThrowsError(try JobStore(url: "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")) { error in
            XCTAssertTrue((error as? PostgresError)?.isConnectionLoss ?? false, "\(error)")
        }
    }
}
