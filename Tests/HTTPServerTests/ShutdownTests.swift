// Shutdown when a handler outlives the grace period: the connection is cut, the server still stops.
import Foundation
import XCTest
@testable import HTTPServer

/// An application whose handler takes `delay` seconds.
private final class SlowApplication: HTTPApplication, @unchecked Sendable {
    let delay: Double
    init(delay: Double) { self.delay = delay }

    func prepare(_ head: HTTPRequestHead) -> RequestPreparation { .accept(MemoryBodySink(), maxBytes: 1024) }
    func respond(to request: HTTPRequest) -> HTTPResponse {
        Thread.sleep(forTimeInterval: delay)
        return HTTPResponse(status: .ok, contentType: "text/plain", bytes: Array("late\n".utf8))
    }
    func responded(to head: HTTPRequestHead?, status: HTTPStatus) {}
    func response(for error: Error) -> HTTPResponse { APIError(.internalError, "internal", "\(error)").response }
}

final class ShutdownTests: XCTestCase {
    func testHandlerOutlivingTheGracePeriodIsCutAndTheServerStops() throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.workerThreads = 2
        configuration.shutdownGrace = 0.2
        let server = HTTPServer(configuration: configuration, application: SlowApplication(delay: 1.0))
        try server.start()
        let fast = try RawClient(port: server.port)
        let slow = try RawClient(port: server.port)
        try slow.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        let started = Date()
        server.shutdown()
        server.wait()
        // The handler finishes its second; its write then fails on the cut socket instead of blocking shutdown.
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
        XCTAssertThrowsError(try slow.response(), "a cut connection must not deliver the late response")
        XCTAssertTrue(fast.isClosedByServer(), "an idle connection is closed at once")
    }
}
