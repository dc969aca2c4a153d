// A session lost at COMMIT: through a TCP proxy that cuts the connection just before the COMMIT reaches the
// server (nothing stored) or just after the server committed (stored, but the client never hears it). A
// retried enqueue stores the job once and answers with it; a worker's retried success is recognised.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

struct ProxyError: Error {
    let errno: Int32
}

/// Forwards TCP connections to PostgreSQL and, when armed, cuts one at the first COMMIT it sees.
final class CommitCuttingProxy: @unchecked Sendable {
    enum Cut {
        /// Close both sides instead of forwarding the COMMIT: the server rolls the transaction back.
        case beforeCommit
        /// Forward the COMMIT, and close both sides when the server's answer comes, instead of passing it on:
        /// the transaction is committed and the client cannot know.
        case afterCommit
    }

    let port: Int
    private let upstreamHost: String
    private let upstreamPort: Int
    private let listener: Int32
    private let lock = NSLock()
    private var armed: Cut?
    private var cuts = 0

    init(upstreamHost: String, upstreamPort: Int) throws {
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = Self.address("127.0.0.1", 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(listener, generic, length) == 0 && getsockname(listener, generic, &length) == 0
            }
        }
        guard bound, listen(listener, 16) == 0 else { throw ProxyError(errno: errno) }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    /// Cuts the next connection that sends a COMMIT, once.
    func arm(_ cut: Cut) { lock.withLock { armed = cut } }
    /// Connections cut so far.
    var cutCount: Int { lock.withLock { cuts } }

    /// `url` (a URI on the upstream server) pointed at this proxy, without TLS so that the proxy reads it.
    func proxied(_ url: String) -> String {
        url.replacingOccurrences(of: "@\(upstreamHost):\(upstreamPort)/", with: "@127.0.0.1:\(port)/")
            + (url.contains("?") ? "&" : "?") + "sslmode=disable"
    }

    private static func address(_ host: String, _ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.address(upstreamHost, upstreamPort)
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else { close(client); close(server); continue }
            let pair = Pair(client: client, server: server)
            Thread { [self] in pumpToServer(pair) }.start()
            Thread { [self] in pumpToClient(pair) }.start()
        }
    }

    /// One proxied connection; `cut` closes both sockets at once (both pumps then stop).
    private final class Pair: @unchecked Sendable {
        let client: Int32
        let server: Int32
        private let lock = NSLock()
        private var swallowing = false
        private var closed = false

        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }

        var isSwallowing: Bool {
            get { lock.withLock { swallowing } }
            set { lock.withLock { swallowing = newValue } }
        }

        func cut() {
            lock.withLock {
                guard !closed else { return }
                closed = true
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(server, Int32(SHUT_RDWR))
            }
        }

        deinit {
            close(client)
            close(server)
        }
    }

    private func pumpToServer(_ pair: Pair) {
        let commit = Array("COMMIT".utf8)
        var tail: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(pair.client, &buffer, buffer.count)
            guard count > 0 else { return pair.cut() }
            let chunk = Array(buffer[0..<count])
            // Keeps the last few bytes, so a COMMIT split across two reads is still seen.
            let window = tail + chunk
            tail = Array(window.suffix(commit.count - 1))
            let cut: Cut? = lock.withLock {
                guard let armed, window.firstRange(of: commit) != nil else { return nil }
                self.armed = nil
                cuts += 1
                return armed
            }
            switch cut {
            case .beforeCommit?:
                return pair.cut()
            case .afterCommit?:
                pair.isSwallowing = true
                guard writeAll(pair.server, chunk) else { return pair.cut() }
            case nil:
                guard writeAll(pair.server, chunk) else { return pair.cut() }
            }
        }
    }

    private func pumpToClient(_ pair: Pair) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(pair.server, &buffer, buffer.count)
            // The server has answered the COMMIT, so it has committed: the client never hears it.
            guard count > 0, !pair.isSwallowing else { return pair.cut() }
            guard writeAll(pair.client, Array(buffer[0..<count])) else { return pair.cut() }
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }
}

final class CommitLossTests: QueueTestCase {
    private var proxy: CommitCuttingProxy!

    override func setUpWithError() throws {
        try super.setUpWithError()
        let server = try XCTUnwrap(URLComponents(string: TestDatabase.serverURL), "TEST_DATABASE_URL must be a URI here")
        proxy = try CommitCuttingProxy(upstreamHost: try XCTUnwrap(server.host), upstreamPort: server.port ?? 5432)
    }

    private func count(_ sql: String) throws -> String { try TestDatabase.psql(url, sql) }

    private func enqueueThroughACut(_ cut: CommitCuttingProxy.Cut, key: String? = nil) throws -> (job: JobRecord, created: Bool) {
        let store = try JobStore(url: proxy.proxied(url))
        proxy.arm(cut)
        let result = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(3),
                                       idempotencyKey: key, payloadDigest: key.map { "digest-\($0)" })
        XCTAssertEqual(proxy.cutCount, 1, "the enqueue's COMMIT was cut")
        return result
    }

    func testAnEnqueueWhoseCommitAnswerIsLostStoresTheJobOnceAndAnswersWithIt() throws {
        let (job, created) = try enqueueThroughACut(.afterCommit)
        XCTAssertTrue(created)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), "1", "stored once, not again by the re-run")
        XCTAssertEqual(try count("SELECT count(*) FROM job_inputs"), "3")
        XCTAssertEqual(try JobStore(url: url).job(id: job.id), job, "the answer is the stored job")
    }

    func testAnEnqueueCutBeforeItsCommitIsStoredByTheRerun() throws {
        let (job, created) = try enqueueThroughACut(.beforeCommit)
        XCTAssertTrue(created)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), "1")
        XCTAssertEqual(try count("SELECT count(*) FROM job_inputs"), "3", "the first run's frames were rolled back")
        XCTAssertEqual(try JobStore(url: url).job(id: job.id)?.status, .queued)
    }

    func testAnIdempotentEnqueueWhoseCommitAnswerIsLostIsNotAReplay() throws {
        let (job, created) = try enqueueThroughACut(.afterCommit, key: "k")
        XCTAssertTrue(created, "the re-run found its own job by id, not the key's earlier job")
        let replay = try JobStore(url: url).enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(3),
                                                    idempotencyKey: "k", payloadDigest: "digest-k")
        XCTAssertFalse(replay.created)
        XCTAssertEqual(replay.job.id, job.id)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), "1")
    }

    /// The worker runs a step again after a lost session; a success that did commit is recognised as its
    /// own, and counted once.
    func testAWorkersSuccessWhoseCommitAnswerIsLostIsRecognisedOnTheRerun() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: proxy.proxied(url))
        let claimed = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        let frames = results(claimed)
        proxy.arm(.afterCommit)
        XCTAssertThrowsError(try queue.succeed(claimed, frames: frames)) { error in
            XCTAssertTrue((error as? PostgresError)?.isConnectionLoss ?? false, "\(error)")
        }
        XCTAssertEqual(proxy.cutCount, 1)
        XCTAssertTrue(try queue.succeed(claimed, frames: frames), "the committed window is this lease's own")
        XCTAssertEqual(try store.job(id: job.id)?.framesDone, 2, "its frames counted once")
        let step = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        proxy.arm(.afterCommit)
        XCTAssertThrowsError(try queue.finish(step))
        XCTAssertTrue(try queue.finish(step), "the committed finishing step is this lease's own")
        XCTAssertEqual(try store.job(id: job.id)?.status, .succeeded)
        // Succeeded: disparity.npy is listed once the finishing step is stored (no colour frame was rendered here).
        XCTAssertEqual(try store.resultPaths(id: job.id), ["disparity.npy", "disparity/0000.png", "disparity/0001.png"])
        XCTAssertEqual(try store.counters().finished[.succeeded], 1, "counted once")
        XCTAssertEqual(try store.counters().durationCount, 1)
    }

    /// A failure is one statement, committed on its own (no COMMIT for the proxy to cut): what matters is
    /// that the worker's re-run of it, after a session lost before its answer, reports it done.
    func testAWorkersFailureRunTwiceIsReportedDoneAndCountedOnce() throws {
        let store = try JobStore(url: url)
        let job = try enqueue(store)
        let queue = WorkerQueue(url: url)
        let claimed = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        let error = JobErrorInfo(code: "bad_input", message: "not a PNG")
        XCTAssertTrue(try queue.fail(claimed, error: error))
        XCTAssertTrue(try queue.fail(claimed, error: error), "a second run reports the move done")
        XCTAssertEqual(try store.job(id: job.id)?.status, .failed)
        XCTAssertEqual(try store.counters().finished[.failed], 1, "counted once")
    }
}
