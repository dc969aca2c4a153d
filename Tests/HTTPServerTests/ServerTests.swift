// The connection layer over a real loopback socket: keep-alive, pipelining, framing errors that close the
// connection, 100-continue, timeouts, slow clients, streaming uploads and graceful shutdown.
import Foundation
import JobQueue
import XCTest
@testable import HTTPServer

class ServerTestCase: XCTestCase {
    var backend: InMemoryJobBackend!
    var server: HTTPServer!
    var uploads: URL!
    var serverConfiguration = HTTPServerConfiguration()
    var apiConfiguration = JobsAPIConfiguration()

    override func setUpWithError() throws {
        uploads = FileManager.default.temporaryDirectory.appendingPathComponent("http-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true)
        backend = InMemoryJobBackend()
        serverConfiguration.port = 0
        serverConfiguration.workerThreads = 4
        serverConfiguration.headTimeout = 1
        serverConfiguration.idleTimeout = 2
        serverConfiguration.bodyStallTimeout = 1
        serverConfiguration.shutdownGrace = 5
        apiConfiguration.uploadDirectory = uploads
        try startServer()
    }

    func startServer() throws {
        server = HTTPServer(configuration: serverConfiguration, application: JobsAPI(backend: backend, configuration: apiConfiguration))
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
        XCTAssertEqual((response.json["progress"] as? [String: Int])?["frames_total"], 3)
    }

    func testSlowHeadGets408AndIdleConnectionIsClosed() throws {
        let slow = try client()
        try slow.send("GET /healthz HTTP/1.1\r\nHo")
        let started = Date()
        let response = try slow.response()
        XCTAssertEqual(response.status, 408)
        XCTAssertEqual(response.errorCode, "request_timeout")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertTrue(slow.isClosedByServer())

        let idle = try client()
        let idleStart = Date()
        XCTAssertTrue(idle.isClosedByServer())
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(idleStart), 1.5)
    }

    func testTrickledHeadStillTimesOut() throws {
        // One byte every 0.3 s keeps the socket busy but the head never completes within its 1 s budget.
        let slow = try client()
        let request = Array("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n\r\n".utf8)
        var status: Int?
        for byte in request {
            guard (try? slow.send([byte])) != nil else { break }
            Thread.sleep(forTimeInterval: 0.3)
            if Date().timeIntervalSince1970 < 0 { break }
            var ready = pollfd(fd: slow.fd, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, 0) > 0 {
                status = try slow.response().status
                break
            }
        }
        XCTAssertEqual(status, 408)
    }

    func testHundredsOfSlowConnectionsDoNotStarveOthers() throws {
        // Stalled heads must not be what frees the server: they stay open well past this test's bound.
        server.shutdown()
        server.wait()
        serverConfiguration.headTimeout = 30
        try startServer()
        var slow: [RawClient] = []
        for index in 0..<300 {
            let connection = try client()
            try connection.send("GET /healthz HTTP/1.1\r\nX-\(index): partial")
            slow.append(connection)
        }
        let started = Date()
        for _ in 0..<20 {
            let (response, _) = try exchange("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            XCTAssertEqual(response.status, 200)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5.0, "20 requests beside 300 stalled connections took too long")
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
        do {
            let abandoned = try client()
            let request = form.request()
            try abandoned.send(Array(request.prefix(request.count - 100)))
            Thread.sleep(forTimeInterval: 0.2)
        }
        // The server notices the close on its next poll; give it a moment.
        let deadline = Date().addingTimeInterval(3)
        while !uploadFiles(in: uploads).isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(uploadFiles(in: uploads), [])
    }

    func testStalledUploadTimesOutAndLeavesNoFiles() throws {
        var form = MultipartBody()
        form.file("left", filename: "l.tar", frameTar(count: 2))
        let connection = try client()
        let request = form.request()
        try connection.send(Array(request.prefix(request.count - 10)))
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
        Thread.sleep(forTimeInterval: 0.1)
        server.shutdown()
        Thread.sleep(forTimeInterval: 0.1)
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
