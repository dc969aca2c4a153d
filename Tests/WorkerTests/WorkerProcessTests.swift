// The real `dynstereo work` binary with the real network, as separate processes that get SIGKILLed and
// SIGTERMed, against a real PostgreSQL (a private cluster where the test restarts the server).
import Foundation
@testable import JobQueue
import Media
import QueueTestSupport
import TestSupport
import XCTest

final class WorkerProcessTests: XCTestCase {
    var url = ""
    var schema = ""
    var server = TestDatabase.serverURL
    var children: [ChildProcess] = []
    var watch: JobWatch!
    let checkpoint = SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path

    override func tearDown() {
        children.removeAll()  // deinit kills any still running
        if !schema.isEmpty { TestDatabase.dropSchema(schema, server: server) }
    }

    func migrate(server: String = TestDatabase.serverURL) throws {
        self.server = server
        (url, schema) = try TestDatabase.makeSchema(name.filter(\.isLetter).suffix(24).description, server: server)
        try Migrator(url: url).run()
        watch = try JobWatch(url: url, schema: schema)
    }

    func startWorker(_ id: String, lease: Double = 2, heartbeat: Double = 0.4, extra: [String] = []) throws -> ChildProcess {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("dynstereo-\(schema)-\(id).log").path
        let child = try ChildProcess(try BuiltProducts.dynstereo().path, [
            "work", "--database", url, "--checkpoint", checkpoint, "--worker-id", id,
            "--lease-seconds", "\(lease)", "--heartbeat-seconds", "\(heartbeat)", "--poll-seconds", "1",
        ] + extra, logPath: log)
        children.append(child)
        return child
    }

    /// The job once `predicate` holds, read back at every change of its row (see `JobWatch`).
    func wait(for id: UUID, _ store: JobStore, until predicate: (JobRecord) -> Bool) throws -> JobRecord {
        try watch.wait(for: id, store, until: predicate)
    }

    /// SIGKILL in the middle of a job: another worker re-runs it after the lease expires, and the job ends
    /// with exactly one set of results.
    func testAJobWhoseWorkerIsKilledIsRerunByAnotherWorkerAndSucceedsOnce() throws {
        try migrate()
        let store = try JobStore(url: url)
        let job = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3, focalPx: 100, baselineM: 0.1),
                                    frames: try goldenVideo(frames: 3), idempotencyKey: nil, payloadDigest: nil).job
        let doomed = try startWorker("doomed")
        let running = try wait(for: job.id, store) { $0.status != .queued }
        XCTAssertEqual(running.status, .running, doomed.log)
        XCTAssertEqual(running.workerId, "doomed/0")
        // What bounds the re-run: the lease runs out 2 s after the last heartbeat, and every worker's reaper
        // (each second here) re-queues such a job; the time it takes is a figure for the notes, printed below.
        XCTAssertEqual(Double(try TestDatabase.psql(url, """
            SELECT extract(epoch FROM lease_expires_at - heartbeat_at) FROM job_windows WHERE status = 'running'
            """)) ?? 0, 2, accuracy: 1e-6, "the lease runs --lease-seconds from the heartbeat")
        doomed.signal(SIGKILL)
        let killedAt = Date()
        XCTAssertEqual(doomed.wait(timeout: hangGuard), 128 + SIGKILL)

        let rescuer = try startWorker("rescuer")
        let done = try wait(for: job.id, store) { $0.status.isTerminal }
        XCTAssertEqual(done.status, .succeeded, rescuer.log)
        XCTAssertEqual(done.attempt, 2, "the killed attempt counts")
        XCTAssertEqual(done.workerId, "rescuer/0")
        let rerun = try TestDatabase.psql(url, "SELECT extract(epoch FROM started_at) FROM job_windows WHERE window_index = 0")
        let rerunDelay = (Double(rerun) ?? 0) - killedAt.timeIntervalSince1970
        print("measured: re-run \(String(format: "%.2f", rerunDelay)) s after SIGKILL (lease 2 s, heartbeat 0.4 s, reaper every 1 s)")
        XCTAssertEqual(done.error, nil, "the re-run's success clears the lost attempt's worker_lost")

        // Exactly the files `dynstereo infer` writes, once each.
        let paths = try store.resultPaths(id: job.id)
        XCTAssertTrue(paths.contains("disparity.npy"), "\(paths)")
        XCTAssertEqual(Set(paths).count, paths.count)
        for kind in ["disparity", "color", "depth"] {
            XCTAssertEqual(paths.filter { $0.hasPrefix(kind + "/") }.count, 3, "\(kind)/ has one file per frame: \(paths)")
        }
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), count(DISTINCT frame_index) FROM job_frames"), "3|3", "nothing stored twice")
        let disparity = try NPY.decode(try XCTUnwrap(try store.result(id: job.id, path: "disparity.npy")))
        XCTAssertEqual(disparity.shape, [3, 32, 64])
        XCTAssertTrue(disparity.data.allSatisfy { $0.isFinite && $0 >= 0 }, "disparity is |flow|, finite")

        rescuer.signal(SIGTERM)
        XCTAssertEqual(rescuer.wait(timeout: hangGuard), 0, "an idle worker exits cleanly on SIGTERM: \(rescuer.log)")
    }

    /// One worker process: a bad frame fails at once, a running job stops when cancelled, and SIGTERM hands
    /// the running job back without spending an attempt.
    func testBadInputCancellationAndSigtermHandBackOnTheRealBinary() throws {
        try migrate()
        let store = try JobStore(url: url)
        let worker = try startWorker("single", lease: 5, heartbeat: 0.3)
        var frames = try goldenVideo(frames: 2)
        frames[1] = InputFrame(index: 1, name: "0001.png", left: Data("not a png".utf8), right: frames[1].right)
        let bad = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames,
                                    idempotencyKey: nil, payloadDigest: nil).job
        let failed = try wait(for: bad.id, store) { $0.status.isTerminal }
        XCTAssertEqual(failed.status, .failed, worker.log)
        XCTAssertEqual(failed.attempt, 1, "no retries for bad input")
        XCTAssertEqual(failed.error?.code, "bad_input")
        XCTAssertTrue(failed.error?.message.contains("0001.png") ?? false, "\(String(describing: failed.error))")

        // Long enough (many windows at 20 iterations) that it is still running when cancelled.
        let long = JobParameters(iters: 20, kernelSize: 2)
        let cancelled = try store.enqueue(parameters: long, frames: try goldenVideo(frames: 40), idempotencyKey: nil, payloadDigest: nil).job
        XCTAssertEqual(try wait(for: cancelled.id, store) { $0.status == .running }.status, .running)
        let requested = Date()
        _ = try store.cancel(id: cancelled.id)
        XCTAssertEqual(try wait(for: cancelled.id, store) { $0.status.isTerminal }.status, .cancelled)
        print("measured: running job cancelled \(String(format: "%.2f", Date().timeIntervalSince(requested))) s after the request")
        XCTAssertEqual(try store.resultPaths(id: cancelled.id), [])

        let handed = try store.enqueue(parameters: long, frames: try goldenVideo(frames: 40), idempotencyKey: nil, payloadDigest: nil).job
        XCTAssertEqual(try wait(for: handed.id, store) { $0.status == .running }.status, .running)
        worker.signal(SIGTERM)
        XCTAssertEqual(worker.wait(timeout: hangGuard), 0, worker.log)
        let back = try store.windows(id: handed.id)
        XCTAssertFalse(back.contains { $0.status == .running }, "every window stored or handed back")
        XCTAssertTrue(back.contains { $0.status == .queued && $0.kind == .window })
        for window in back where window.status == .queued {
            XCTAssertEqual(window.attempt, 0, "a hand-back spends no attempt")
        }
    }

    /// The database restarts while the real worker runs a job; the worker reconnects and the job finishes
    /// in the same attempt.
    func testTheRealWorkerSurvivesADatabaseRestartMidJob() throws {
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        try migrate(server: cluster.serverURL)
        let store = try JobStore(url: url)
        let job = try store.enqueue(parameters: JobParameters(iters: 6, kernelSize: 2), frames: try goldenVideo(frames: 12),
                                    idempotencyKey: nil, payloadDigest: nil).job
        let worker = try startWorker("steady", lease: 20, heartbeat: 0.5)
        XCTAssertEqual(try wait(for: job.id, store) { $0.status == .running }.status, .running)
        try cluster.restart()
        let restarted = Date()
        let done = try wait(for: job.id, store) { $0.status.isTerminal }
        XCTAssertEqual(done.status, .succeeded, worker.log)
        XCTAssertEqual(done.attempt, 1, "the restart cost no attempt")
        XCTAssertGreaterThan(try XCTUnwrap(done.finishedAt), restarted, "the job was still running when the server came back")
        XCTAssertEqual(try store.resultPaths(id: job.id).filter { $0.hasPrefix("disparity/") }.count, 12)
        worker.signal(SIGTERM)
        XCTAssertEqual(worker.wait(timeout: hangGuard), 0)
    }

    func testAWrongCheckpointOrNoDatabaseStopsTheWorkerWithOneLine() throws {
        let noDatabase = try TestDatabase.run(try BuiltProducts.dynstereo().path, ["work", "--checkpoint", checkpoint],
                                              environment: ["DATABASE_URL": ""])
        XCTAssertNotEqual(noDatabase.status, 0)
        XCTAssertTrue(noDatabase.output.contains("DATABASE_URL"), noDatabase.output)
        let wrong = try TestDatabase.run(try BuiltProducts.dynstereo().path, [
            "work", "--database", TestDatabase.serverURL, "--checkpoint", SharedData.golden.appendingPathComponent("README.md").path,
        ])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.output.hasPrefix("Error: "), wrong.output)
        XCTAssertEqual(wrong.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, wrong.output)
    }
}
