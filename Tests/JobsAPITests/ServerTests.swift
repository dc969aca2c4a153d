// The service's connection layer over a real loopback socket: keep-alive, pipelining, framing errors that
// close the connection, 100-continue, timeouts, slow clients, streaming uploads and graceful shutdown. The
// server runs on a clock the tests move and reports what it does, so tests wait for events, not seconds.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import XCTest
@testable import JobsAPI

class ServerTestCase: XCTestCase {
    var backend: InMemoryJobBackend!
    var server: HTTPServer<JobsHTTPApplication>!
    var uploads: URL!
    var serverConfiguration = HTTPServerConfiguration()
    var apiConfiguration = JobsAPIConfiguration()
    /// The server's time: it stands still unless a test advances it, so no timeout fires by itself.
    let serverClock = ManualServerClock()
    let events = ServerEventLog()

    override func setUpWithError() throws {
        uploads = FileManager.default.temporaryDirectory.appendingPathComponent("http-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true)
        backend = InMemoryJobBackend()
        serverConfiguration.port = 0
        serverConfiguration.handlerThreads = 4
        serverConfiguration.headTimeout = 1
        serverConfiguration.idleTimeout = 2
        serverConfiguration.bodyStallTimeout = 1
        serverConfiguration.shutdownGrace = 5
        apiConfiguration.uploadDirectory = uploads
        try startServer()
    }

    func startServer() throws {
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration))
    }

    /// Starts a server for `application` with this test's configuration, clock and event log.
    func serve(_ application: JobsHTTPApplication) throws {
        server = HTTPServer(configuration: serverConfiguration, application: application, clock: serverClock, events: events.record)
        try server.start()
    }

    override func tearDown() {
        server?.shutdown()
        server?.wait()
        try? FileManager.default.removeItem(at: uploads)
    }

    func client() throws -> RawClient { try RawClient(port: server.port) }

    /// Sends `request` on a fresh connection and returns the response and whether the server closed afterwards.
    func exchange(_ request: String) throws -> (RawResponse, closed: Bool) {
        let connection = try client()
        try connection.send(request)
        let response = try connection.response()
        return (response, connection.isClosedByServer())
    }

    /// `method path` with no body on a fresh connection that the request closes.
    func send(_ method: String, _ path: String, headers: [String] = []) throws -> RawResponse {
        try exchange("\(method) \(path) HTTP/1.1\r\nHost: t\r\n" + headers.map { $0 + "\r\n" }.joined() + "Connection: close\r\n\r\n").0
    }

    func get(_ path: String, headers: [String] = []) throws -> RawResponse { try send("GET", path, headers: headers) }

    func submitJob(frames: Int = 2, headers: [String] = [], on connection: RawClient? = nil) throws -> RawResponse {
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: frames))
        form.file("right", filename: "right.tar", frameTar(count: frames, seed: 100))
        form.field("iters", "4")
        let connection = try connection ?? client()
        try connection.send(form.request(headers: headers))
        return try connection.response()
    }
}

final class ServerTests: ServerTestCase {
    func testKeepAliveServesManyRequestsOnOneConnection() throws {
        let connection = try client()
        for _ in 0..<5 {
            try connection.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try connection.response()
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.header("Content-Length"), "\(response.body.count)")
            XCTAssertNotNil(response.header("Date")?.range(of: #"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$"#,
                                                           options: .regularExpression), response.header("Date") ?? "no Date")
        }
        try connection.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(try connection.response().header("Connection"), "close")
        XCTAssertTrue(connection.isClosedByServer())
    }

    func testHeadGetsHeadersWithoutABody() throws {
        let connection = try client()
        try connection.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try connection.response(headRequest: true)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "16")
        // The next response starts right after the head's headers: no body bytes were sent.
        XCTAssertEqual(try connection.response().text, "{\"status\":\"ok\"}\n")
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let connection = try client()
        try connection.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /jobs/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try connection.response().status, 200)
        XCTAssertEqual(try connection.response().status, 404)
        XCTAssertEqual(try connection.response().text, "{\"status\":\"ready\"}\n")
    }

    func testMalformedRequestsGetTheirStatusAndACloseConnection() throws {
        let cases: [(String, Int, String)] = [
            ("GET / HTTP/1.1\r\n\r\n", 400, "missing_host"),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate_host"),
            ("POST /jobs HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400, "bad_content_length"),
            ("POST /jobs HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, "duplicate_content_length"),
            ("POST /jobs HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "ambiguous_framing"),
            ("POST /jobs/00000000-0000-0000-0000-000000000000/cancel HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_chunk"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "a", count: 20_000))\r\n\r\n", 431, "header_too_large"),
            ("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, "unsupported_http_version"),
        ]
        for (request, status, code) in cases {
            let (response, closed) = try exchange(request)
            XCTAssertEqual(response.status, status, request)
            XCTAssertEqual(response.errorCode, code, request)
            XCTAssertEqual(response.header("Content-Type"), "application/json")
            XCTAssertTrue(closed, "connection left open after \(code)")
        }
    }

    func testRefusedBodyIsNeverParsedAsASecondRequest() throws {
        // A body smuggling a request to an unknown route: the server answers 404 and closes without reading it.
        let smuggled = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        let (response, closed) = try exchange("POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n\(smuggled)")
        XCTAssertEqual(response.status, 404)
        XCTAssertTrue(closed)
        // A refusal with no body keeps the connection usable.
        let connection = try client()
        try connection.send("DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        let refused = try connection.response()
        XCTAssertEqual(refused.status, 405)
        XCTAssertEqual(refused.header("Allow"), "GET")
        XCTAssertEqual(try connection.response().status, 200)
    }

    func testExpectContinueGetsAnInterimResponse() throws {
        let connection = try client()
        var form = MultipartBody()
        form.file("left", filename: "l.tar", frameTar(count: 1))
        form.file("right", filename: "r.tar", frameTar(count: 1))
        let body = form.finished()
        try connection.send("POST /jobs HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Type: \(form.contentType)\r\nContent-Length: \(body.count)\r\n\r\n")
        XCTAssertEqual(try connection.response(skipInterim: false).status, 100)
        try connection.send(body)
        XCTAssertEqual(try connection.response().status, 202)
        // An upload too large is refused before the client sends it.
        let big = try client()
        try big.send("POST /jobs HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Type: \(form.contentType)\r\nContent-Length: \(apiConfiguration.maxUploadBytes + 1)\r\n\r\n")
        let refused = try big.response(skipInterim: false)
        XCTAssertEqual(refused.status, 413)
        XCTAssertTrue(big.isClosedByServer())
    }

    func testChunkedUploadIsAccepted() throws {
        var form = MultipartBody()
        form.file("left", filename: "l.tar", frameTar(count: 3))
        form.file("right", filename: "r.tar", frameTar(count: 3))
        let body = form.finished()
        var chunked = ""
        var wire: [UInt8] = []
        var offset = 0
        while offset < body.count {
            let size = min(777, body.count - offset)
            wire += Array((String(size, radix: 16) + ";x=y\r\n").utf8) + body[offset..<(offset + size)] + [13, 10]
            offset += size
        }
        wire += Array("0\r\n\r\n".utf8)
        chunked = "POST /jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: \(form.contentType)\r\n\r\n"
        let connection = try client()
        try connection.send(Array(chunked.utf8) + wire)
        let response = try connection.response()
        XCTAssertEqual(response.status, 202, response.text)
        XCTAssertEqual((response.json["progress"] as? [String: Any])?["frames_total"] as? Int, 3)
    }

    func testSlowHeadGets408AndIdleConnectionIsClosed() throws {
        let slow = try client()
        let partial = "GET /healthz HTTP/1.1\r\nHo"
        try slow.send(partial)
        XCTAssertTrue(events.waitUntilReceived(slow, bytes: partial.utf8.count))
        let started = serverClock.now()
        // Just short of the head timeout nothing is sent; at it, the 408 is.
        XCTAssertTrue(serverClock.advance(by: serverConfiguration.headTimeout - 0.25))
        XCTAssertTrue(slow.hasReceivedNothing(), "answered before the head timeout")
        XCTAssertTrue(serverClock.advance(by: 0.25))
        let response = try slow.response()
        XCTAssertEqual(response.status, 408)
        XCTAssertEqual(response.errorCode, "request_timeout")
        XCTAssertLessThan(serverClock.now() - started, 5)
        XCTAssertTrue(slow.isClosedByServer())

        let idle = try client()
        XCTAssertTrue(events.waitUntilAccepted(idle))
        let idleStart = serverClock.now()
        XCTAssertTrue(serverClock.advance(by: 1.5))
        XCTAssertTrue(idle.hasReceivedNothing(), "closed before 1.5 s of idleness")
        XCTAssertTrue(serverClock.advance(by: serverConfiguration.idleTimeout - 1.5))
        XCTAssertTrue(idle.isClosedByServer())
        XCTAssertGreaterThanOrEqual(serverClock.now() - idleStart, 1.5)
    }

    func testTrickledHeadStillTimesOut() throws {
        // One byte every 0.25 s keeps the socket busy but the head never completes within its 1 s budget: the
        // budget runs from the first byte and later bytes do not extend it.
        let slow = try client()
        let request = Array("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n".utf8)
        try slow.send([request[0]])
        XCTAssertTrue(events.waitUntilReceived(slow, bytes: 1))
        let started = serverClock.now()
        var sent = 1
        while serverClock.now() + 0.25 < started + serverConfiguration.headTimeout {
            XCTAssertTrue(serverClock.advance(by: 0.25))
            try slow.send([request[sent]])
            sent += 1
            XCTAssertTrue(events.waitUntilReceived(slow, bytes: sent))
        }
        XCTAssertTrue(serverClock.advance(by: 0.25))
        XCTAssertLessThan(sent, request.count, "the head must still be incomplete")
        XCTAssertEqual(try slow.response().status, 408)
    }

    func testHundredsOfSlowConnectionsDoNotStarveOthers() throws {
        // Stalled heads must not be what frees the server: its clock never moves here, so none of them times
        // out, and all stay open while the others are served.
        server.shutdown()
        server.wait()
        serverConfiguration.headTimeout = 30
        // Every client here shares 127.0.0.1, as behind a proxy: the per-address bound is not what is tested.
        serverConfiguration.maxConnectionsPerAddress = serverConfiguration.maxConnections
        try startServer()
        var slow: [RawClient] = []
        for index in 0..<300 {
            let connection = try client()
            let partial = "GET /healthz HTTP/1.1\r\nX-\(index): partial"
            try connection.send(partial)
            slow.append(connection)
            XCTAssertTrue(events.waitUntilReceived(connection, bytes: partial.utf8.count))
        }
        let started = serverClock.now()
        for _ in 0..<20 {
            let (response, _) = try exchange("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(response.status, 200)
        }
        XCTAssertEqual(serverClock.now(), started, "20 requests beside 300 stalled connections needed the server's clock to move")
        XCTAssertTrue(slow.allSatisfy { $0.hasReceivedNothing() }, "a stalled connection was answered or closed")
        withExtendedLifetime(slow) {}
    }

    func testUploadTempFilesAreRemovedAfterSuccessAndFailure() throws {
        XCTAssertEqual(try submitJob().status, 202)
        // A refused upload (mismatched counts) and an abandoned one (client vanishes mid-body).
        var form = MultipartBody()
        form.file("left", filename: "l.tar", frameTar(count: 2))
        form.file("right", filename: "r.tar", frameTar(count: 3))
        let connection = try client()
        try connection.send(form.request())
        XCTAssertEqual(try connection.response().errorCode, "frame_count_mismatch")
        let abandonedPeer: String
        do {
            let abandoned = try client()
            abandonedPeer = abandoned.localAddress
            let request = form.request()
            let partial = Array(request.prefix(request.count - 100))
            try abandoned.send(partial)
            // The server has the upload's temp files when the client vanishes.
            XCTAssertTrue(events.waitUntilReceived(abandoned, bytes: partial.count))
            XCTAssertFalse(uploadFiles(in: uploads).isEmpty, "the partial upload was not being stored")
        }
        XCTAssertTrue(events.waitUntilClosed(peer: abandonedPeer), "the server did not notice the client leaving")
        XCTAssertEqual(uploadFiles(in: uploads), [])
    }

    func testStalledUploadTimesOutAndLeavesNoFiles() throws {
        var form = MultipartBody()
        form.file("left", filename: "l.tar", frameTar(count: 2))
        let connection = try client()
        let request = form.request()
        let partial = Array(request.prefix(request.count - 10))
        try connection.send(partial)
        XCTAssertTrue(events.waitUntilReceived(connection, bytes: partial.count))
        XCTAssertTrue(serverClock.advance(by: serverConfiguration.bodyStallTimeout))
        XCTAssertEqual(try connection.response().status, 408)
        XCTAssertEqual(uploadFiles(in: uploads), [])
    }

    func testGracefulShutdownFinishesTheRequestInProgress() throws {
        let connection = try client()
        var form = MultipartBody()
        form.file("left", filename: "l.tar", frameTar(count: 2))
        form.file("right", filename: "r.tar", frameTar(count: 2))
        let request = form.request()
        try connection.send(Array(request.prefix(200)))
        XCTAssertTrue(events.waitUntilReceived(connection, bytes: 200))
        server.shutdown()
        XCTAssertTrue(events.wait(for: .listenerClosed))
        // New connections are refused once the listener is closed.
        XCTAssertThrowsError(try RawClient(port: server.port).send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"))
        try connection.send(Array(request.dropFirst(200)))
        let response = try connection.response()
        XCTAssertEqual(response.status, 202)
        XCTAssertTrue(connection.isClosedByServer())
        server.wait()
        server = nil
    }
}
