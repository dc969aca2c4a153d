// The status poll from memory (JobPollCache, and the key checks of APIKeyVerifier), over a real socket with
// the PostgreSQL job store and a ChangeListener on its schema: a worker's write from another connection is
// seen by the next poll once its notification has arrived, a read overlapping a change is not kept, a lost
// LISTEN session turns the memory off until it listens again, keys created or revoked elsewhere count at the
// next request, the ETA moves with the clock, and every answer is byte for byte what a server without the
// memory gives on the same database at the same time. Waits are for notifications (`ChangeLog.fence`), never
// for time to pass.
import APIKeys
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import QueueTestSupport
import TestSupport
import XCTest
@testable import JobsAPI

/// The time the job views are rendered at, moved by the test.
private final class ViewClock: @unchecked Sendable {
    private let lock = NSLock()
    /// Set at the first read, 100 s ahead of the wall clock then, so that a job's start (PostgreSQL's now())
    /// lies in the view's past. Not at construction: XCTest makes every test's instance when the run starts,
    /// minutes before a late test runs, and a clock left that far behind put the job's start in the view's
    /// future (an ETA of 0 however far the test moved the clock).
    private var current: Date?

    var now: Date { lock.withLock { started() } }
    func advance(by seconds: Double) { lock.withLock { current = started().addingTimeInterval(seconds) } }

    /// The current time; the caller holds `lock`.
    private func started() -> Date {
        if let current { return current }
        let start = Date().addingTimeInterval(100)
        current = start
        return start
    }
}

final class PollCacheTests: StoreServerTestCase {
    override var schemaPrefix: String { "pollcache_" }

    private let log = ChangeLog()
    /// The listener's reconnection backoff: it stands still, so a lost session stays lost until the test moves it.
    private let listenerClock = ManualClock()
    private let viewClock = ViewClock()
    private var pollCache: JobPollCache!
    private var verifier: APIKeyVerifier!
    private var keys: APIKeyStore!
    private var listener: ChangeListener!
    /// A server on the same database without the memory, for comparisons: what every answer must equal.
    private var uncached: HTTPServer<JobsHTTPApplication>!

    override func startServer() throws {
        keys = try APIKeyStore(url: databaseURL)
        let cache = JobPollCache()
        let verifier = APIKeyVerifier(store: keys, caching: true)
        (pollCache, self.verifier) = (cache, verifier)
        let log = self.log
        listener = try ChangeListener(url: databaseURL, clock: listenerClock) { change in
            cache.apply(change)
            verifier.apply(change)
            log.record(change)
        }
        listener.start()
        XCTAssertTrue(log.wait(for: .listening))
        let viewClock = self.viewClock
        let now: @Sendable () -> Date = { viewClock.now }
        try serve(JobsHTTPApplication(backend: JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader()),
                                      configuration: apiConfiguration, authenticator: BearerAuthenticator(verifier: verifier),
                                      pollCache: cache, now: now))
        let plain = JobsHTTPApplication(backend: JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader()),
                                        configuration: apiConfiguration,
                                        authenticator: BearerAuthenticator(verifier: APIKeyVerifier(store: keys)), now: now)
        uncached = HTTPServer(configuration: serverConfiguration, application: plain, clock: ManualServerClock())
        try uncached.start()
    }

    override func tearDown() {
        uncached?.shutdown()
        uncached?.wait()
        listener?.stop()
        super.tearDown()
    }

    private func poll(_ path: String, key: String? = nil, from server: HTTPServer<JobsHTTPApplication>? = nil) throws -> RawResponse {
        let connection = try RawClient(port: (server ?? self.server).port)
        let authorization = key.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        try connection.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\(authorization)Connection: close\r\n\r\n")
        return try connection.response()
    }

    /// Polls both servers and checks the answers are the same bytes; returns the cached server's.
    @discardableResult
    private func pollBoth(_ path: String, key: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> RawResponse {
        let cached = try poll(path, key: key)
        let plain = try poll(path, key: key, from: uncached)
        XCTAssertEqual(cached.status, plain.status, file: file, line: line)
        XCTAssertEqual(cached.text, plain.text, "the kept answer differs from the store's", file: file, line: line)
        XCTAssertEqual(cached.header("Content-Type"), plain.header("Content-Type"), file: file, line: line)
        return cached
    }

    /// Queues a job of `frames` 8×6 frames cut into windows of 2, named `names` if given; returns its path.
    private func submit(frames: Int = 4, key: String? = nil, names: [String]? = nil) throws -> String {
        let files = names ?? (0..<frames).map { String(format: "%04d.png", $0) }
        var form = MultipartBody()
        form.file("left", filename: "left.tar", tar(files.enumerated().map { ($1, tinyPNG(width: 8, height: 6, seed: UInt8($0))) }))
        form.file("right", filename: "right.tar", tar(files.enumerated().map { ($1, tinyPNG(width: 8, height: 6, seed: UInt8(50 + $0))) }))
        form.field("iters", "2")
        form.field("kernel_size", "2")
        let connection = try client()
        try connection.send(form.request(headers: key.map { ["Authorization: Bearer \($0)"] } ?? []))
        let response = try connection.response()
        XCTAssertEqual(response.status, 202, response.text)
        return "/jobs/\(try XCTUnwrap(response.json["id"] as? String))"
    }

    private func results(_ window: ClaimedWindow) -> [FrameResult] {
        window.window.resultFrames.map { frame in
            FrameResult(frameIndex: frame, name: String(format: "%04d", frame), height: 6, width: 8, disparity: Data(count: 4 * 48),
                        disparityPNG: Data([1]), depthPNG: nil, minDisparity: 0, maxDisparity: 0)
        }
    }

    private var statistics: NotifiedCacheStatistics { pollCache.statistics }

    private func progress(_ response: RawResponse) throws -> [String: Any] {
        try XCTUnwrap(response.json["progress"] as? [String: Any], response.text)
    }

    private func windows(_ response: RawResponse) throws -> [[String: Any]] {
        try XCTUnwrap(response.json["windows"] as? [[String: Any]], response.text)
    }

    func testPollsComeFromMemoryUntilAWorkersWriteIsAnnounced() throws {
        let path = try submit()
        try log.fence(databaseURL)
        let first = try poll(path)
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(first.json["status"] as? String, "queued")
        let second = try poll(path)
        XCTAssertEqual(second.body, first.body)
        XCTAssertEqual(statistics.misses, 1, "one read of the store")
        XCTAssertEqual(statistics.hits, 1, "the second poll from memory")
        // A notification about a job of no one here (another schema's, say) costs nothing kept.
        try log.fence(databaseURL)
        XCTAssertEqual(statistics.entries, 1)

        // A worker claims a window on its own connection: the next poll after the notification shows it.
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        let window = try XCTUnwrap(try queue.claim(workerId: "worker-a/0", leaseSeconds: 30))
        try log.fence(databaseURL)
        let claimed = try pollBoth(path)
        XCTAssertEqual(claimed.json["status"] as? String, "running")
        XCTAssertEqual(try windows(claimed).first?["worker"] as? String, "worker-a/0")
        XCTAssertEqual(statistics.misses, 2)

        XCTAssertEqual(try queue.heartbeat(window, iterationsDone: 3, iterationsTotal: 4, leaseSeconds: 30), .held(cancelRequested: false))
        try log.fence(databaseURL)
        XCTAssertEqual(try progress(try pollBoth(path))["iterations_done"] as? Int, 3, "a heartbeat's iterations")

        XCTAssertTrue(try queue.succeed(window, frames: results(window)))
        try log.fence(databaseURL)
        let stored = try pollBoth(path)
        XCTAssertEqual(try progress(stored)["windows_done"] as? Int, 1, "a stored window")
        XCTAssertEqual((stored.json["frames_ready"] as? [String: Any])?["ranges"] as? [[Int]],
                       [[window.window.resultFrames.lowerBound, window.window.resultFrames.upperBound]])
        let hits = statistics.hits
        XCTAssertEqual(try poll(path).body, stored.body)
        XCTAssertEqual(statistics.hits, hits + 1, "kept again until the next change")
    }

    func testTheKeptJSONIsTheStoresByteForByteInEveryState() throws {
        let plain = try submit()
        let named = try submit(frames: 3, names: ["img_a.png", "img_b.png", "img_c.png"])
        let cancelled = try submit(frames: 2)
        let paths = [plain, named, cancelled]
        try log.fence(databaseURL)
        for _ in 0..<2 {
            for path in paths { try pollBoth(path) }
        }
        XCTAssertEqual((try pollBoth(named).json["frames_ready"] as? [String: Any])?["names"] as? [String], ["img_a", "img_b", "img_c"])
        // Cancelled through this server: its kept answer is dropped before the cancel answers.
        XCTAssertEqual(try send("POST", "\(cancelled)/cancel").status, 200)
        XCTAssertEqual(try pollBoth(cancelled).json["status"] as? String, "cancelled")

        // Every step of the other two jobs as a worker runs them, each job compared after each step: once read
        // from the store, once from memory, and once more later (a running job's ETA moves meanwhile).
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        while let window = try queue.claim(workerId: "w", leaseSeconds: 30) {
            try log.fence(databaseURL)
            for path in paths { try pollBoth(path) }
            switch window.kind {
            case .window: XCTAssertTrue(try queue.succeed(window, frames: results(window)))
            case .finish:
                for frame in try queue.framesToRender(window) {
                    XCTAssertTrue(try queue.storeRendered(window, frame: frame, RenderedFrame(colorPNG: Data([1]), videoPNG: Data([2]))))
                }
                XCTAssertTrue(try queue.finish(window))
            case .prepare: XCTFail("a job of frames has no preparing step")
            }
            try log.fence(databaseURL)
            for _ in 0..<2 {
                for path in paths { try pollBoth(path) }
            }
            viewClock.advance(by: 7)
            for path in paths { try pollBoth(path) }
        }
        for path in [plain, named] {
            let done = try pollBoth(path)
            XCTAssertEqual(done.json["status"] as? String, "succeeded", done.text)
            XCTAssertNotNil((done.json["urls"] as? [String: Any])?["results"] as? [String])
        }
        XCTAssertEqual(try poll("/jobs/\(UUID().uuidString.lowercased())").status, 404)
        XCTAssertEqual(statistics.entries, 3, "unknown jobs take no memory")
        XCTAssertGreaterThan(statistics.hits, 20)
    }

    func testTheETAMovesWithTheClockWithoutReadingTheStore() throws {
        let path = try submit(frames: 6)
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        let window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertTrue(try queue.succeed(window, frames: results(window)))
        try log.fence(databaseURL)
        let before = try pollBoth(path)
        let eta = try XCTUnwrap(try progress(before)["eta_seconds"] as? Double, before.text)
        let misses = statistics.misses
        viewClock.advance(by: 30)
        let later = try pollBoth(path)
        let laterETA = try XCTUnwrap(try progress(later)["eta_seconds"] as? Double)
        XCTAssertGreaterThan(laterETA, eta, "a job that stored nothing more in 30 s has longer to go")
        viewClock.advance(by: 0.001)
        try pollBoth(path)
        XCTAssertEqual(statistics.misses, misses, "the ETA came from memory: no read of the store")
        XCTAssertGreaterThanOrEqual(statistics.hits, 2)
    }

    func testAReadOverlappingAWorkersWriteIsNotKept() throws {
        let path = try submit()
        try log.fence(databaseURL)
        let id = try XCTUnwrap(UUID(uuidString: String(path.dropFirst("/jobs/".count))))
        let backend = JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader())
        let render: (JobSnapshot, Date) throws -> [UInt8] = { snapshot, _ in Array(snapshot.status.rawValue.utf8) }
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        // The read sees the queued job; a worker claims it and its notification arrives before the read ends.
        let stale = try pollCache.body(id: id, owner: nil, now: Date(), read: {
            let snapshot = try backend.job(id: id, owner: nil)
            _ = try queue.claim(workerId: "w", leaseSeconds: 30)
            try log.fence(databaseURL)
            return snapshot
        }, render: render)
        XCTAssertEqual(stale.map { String(decoding: $0, as: UTF8.self) }, "queued", "the overlapping read answers what it read")
        XCTAssertEqual(statistics.refused, 1)
        var read = false
        let next = try pollCache.body(id: id, owner: nil, now: Date(), read: {
            read = true
            return try backend.job(id: id, owner: nil)
        }, render: render)
        XCTAssertTrue(read, "nothing was kept from the overlapping read")
        XCTAssertEqual(next.map { String(decoding: $0, as: UTF8.self) }, "running")
        // What this test rendered is no job's JSON: dropped, the server's own poll reads and renders the job.
        pollCache.drop(id)
        XCTAssertEqual(try pollBoth(path).json["status"] as? String, "running")
    }

    func testALostListenSessionTurnsTheMemoryOffUntilItListensAgain() throws {
        let path = try submit()
        try log.fence(databaseURL)
        _ = try poll(path)
        _ = try poll(path)
        XCTAssertEqual(statistics.entries, 1)
        let mark = log.count
        XCTAssertEqual(try TestDatabase.psql(databaseURL, "SELECT pg_terminate_backend(\(try XCTUnwrap(listener.backendPID)))"), "t")
        XCTAssertTrue(log.wait(for: .lost, after: mark))
        XCTAssertEqual(statistics.entries, 0, "everything dropped: notifications may be missed now")

        // Nobody listens: a worker's write is seen at once, since every poll reads the store, and nothing is kept.
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        _ = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        let (hits, bypassed) = (statistics.hits, statistics.bypassed)
        XCTAssertEqual(try pollBoth(path).json["status"] as? String, "running")
        XCTAssertEqual(try poll(path).json["status"] as? String, "running")
        XCTAssertEqual(statistics.hits, hits)
        XCTAssertEqual(statistics.bypassed, bypassed + 2)
        XCTAssertEqual(statistics.entries, 0)

        // The backoff passes, the session listens again, and polls are kept again.
        listenerClock.advance(by: 1)
        XCTAssertTrue(log.wait(for: .listening, after: mark))
        _ = try poll(path)
        _ = try poll(path)
        XCTAssertEqual(statistics.hits, hits + 1)
        XCTAssertEqual(statistics.entries, 1)
    }

    func testKeysCreatedAndRevokedElsewhereCountAtTheNextRequestAfterTheirNotification() throws {
        let open = try submit()
        try log.fence(databaseURL)
        XCTAssertEqual(try pollBoth(open).status, 200, "no key yet: open")
        XCTAssertEqual(try poll(open).status, 200)
        let openness = try XCTUnwrap(verifier.cacheStatistics)
        XCTAssertGreaterThan(openness.hits, 0, "whether the server is open came from memory")

        // `dynstereo keys create`, another process: the server closes once its notification is in.
        let secret = APIKeySecret.generate()
        _ = try keys.create(name: "alice", sha256: APIKeySecret.sha256Hex(secret))
        try log.fence(databaseURL)
        XCTAssertEqual(try pollBoth(open).status, 401, "the kept 'open' was dropped by the key's notification")
        XCTAssertEqual(try pollBoth(open, key: secret).status, 404, "a job of the open server is no key's")

        let path = try submit(key: secret)
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        // The open job is older: it gets the first claim, the keyed one the second (it has fewer running).
        _ = try XCTUnwrap(try queue.claim(workerId: "worker-a/0", leaseSeconds: 30))
        let keyedWindow = try XCTUnwrap(try queue.claim(workerId: "worker-b/0", leaseSeconds: 30))
        XCTAssertEqual("/jobs/\(keyedWindow.jobId.uuidString.lowercased())", path)
        try log.fence(databaseURL)
        let keyed = try pollBoth(path, key: secret)
        XCTAssertEqual(keyed.status, 200, keyed.text)
        XCTAssertTrue(try windows(keyed).contains { $0["status"] as? String == "running" && $0["worker"] is NSNull },
                      "keyed clients see no worker ids: \(keyed.text)")
        let hits = statistics.hits
        XCTAssertEqual(try poll(path, key: secret).body, keyed.body)
        XCTAssertEqual(statistics.hits, hits + 1)
        XCTAssertGreaterThan(try XCTUnwrap(verifier.cacheStatistics).hits, 0, "the key was checked from memory")

        let other = APIKeySecret.generate()
        _ = try keys.create(name: "bob", sha256: APIKeySecret.sha256Hex(other))
        try log.fence(databaseURL)
        XCTAssertEqual(try pollBoth(path, key: other).status, 404, "another key's job, kept or not, is unknown")
        XCTAssertEqual(try poll(path, key: secret).status, 200)

        XCTAssertNotNil(try keys.revoke("alice"))
        try log.fence(databaseURL)
        let revoked = try pollBoth(path, key: secret)
        XCTAssertEqual(revoked.status, 403)
        XCTAssertEqual(revoked.errorCode, "key_revoked")
    }

    func testThisServersOwnWritesAreReadBackAtOnce() throws {
        let path = try submit()
        try log.fence(databaseURL)
        XCTAssertEqual(try poll(path).json["status"] as? String, "queued")
        XCTAssertEqual(try poll(path).json["status"] as? String, "queued")
        // No waiting for the notification: the cancel dropped the kept answer before it answered.
        XCTAssertEqual(try send("POST", "\(path)/cancel").status, 200)
        XCTAssertEqual(try poll(path).json["status"] as? String, "cancelled")
        XCTAssertEqual(try send("DELETE", path).status, 204)
        XCTAssertEqual(try poll(path).status, 404)
    }

    func testPromtoolAcceptsTheMetricsWithTheCacheFigures() throws {
        let path = try submit()
        try log.fence(databaseURL)
        for _ in 0..<3 { _ = try poll(path) }
        let text = try send("GET", "/metrics").text
        XCTAssertEqual(metricValue("dynstereo_poll_cache_hits_total", in: text), 2)
        XCTAssertEqual(metricValue("dynstereo_poll_cache_misses_total", in: text), 1)
        XCTAssertEqual(metricValue("dynstereo_poll_cache_entries", in: text), 1)
        XCTAssertNotNil(metricValue("dynstereo_poll_cache_invalidations_total", in: text))
        try assertPromtoolAccepts(text)
    }
}
