// Shutdown when a handler outlives the grace period: the connection is cut, the server still stops.
import Foundation
import HTTPTestSupport
import XCTest
@testable import HTTPTransport

/// An application whose handler runs until the test releases it, so that it provably outlives the grace period.
private final class HeldApplication: HTTPApplication, @unchecked Sendable {
    let started = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)

    func prepare(_ head: HTTPRequestHead) -> RequestPreparation<[UInt8]> { .accept(MemoryBodySink(), maxBytes: 1024) }
    func respond(to request: HTTPRequest<[UInt8]>) -> HTTPResponse {
        started.signal()
        _ = release.wait(timeout: .now() + hangGuardSeconds)
        return HTTPResponse(status: .ok, contentType: "text/plain", bytes: Array("late\n".utf8))
    }
    func responded(to head: HTTPRequestHead?, status: HTTPStatus) {}
    func response(for error: Error) -> HTTPResponse {
        HTTPResponse(status: (error as? HTTPTransportError)?.status ?? .internalError, contentType: "text/plain",
                     bytes: Array("\(error)\n".utf8))
    }
}

final class ShutdownTests: XCTestCase {
    func testHandlerOutlivingTheGracePeriodIsCutAndTheServerStops() throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.handlerThreads = 2
        configuration.shutdownGrace = 0.2
        let clock = ManualServerClock()
        let events = ServerEventLog()
        let application = HeldApplication()
        let server = HTTPServer(configuration: configuration, application: application, clock: clock, events: events.record)
        try server.start()
        let fast = try RawClient(port: server.port)
        let slow = try RawClient(port: server.port)
        try slow.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertTrue(events.waitUntilAccepted(fast))
        XCTAssertEqual(application.started.wait(timeout: .now() + hangGuardSeconds), .success, "the handler never ran")
        let started = clock.now()
        server.shutdown()
        XCTAssertTrue(events.waitUntilClosed(peer: fast.localAddress), "an idle connection is closed at once")
        XCTAssertEqual(clock.now(), started, "closed before any of the grace period passed")
        // The grace period ends with the handler still running; once released, its write fails on the cut
        // socket at once instead of blocking shutdown until the final give-up.
        XCTAssertTrue(clock.advance(by: configuration.shutdownGrace))
        application.release.signal()
        XCTAssertTrue(returns { server.wait() }, "the server did not stop")
        XCTAssertLessThan(clock.now() - started, configuration.shutdownGrace + configuration.writeTimeout,
                          "stopped without waiting for the give-up after the grace period")
        XCTAssertThrowsError(try slow.response(), "a cut connection must not deliver the late response")
        XCTAssertTrue(fast.isClosedByServer(), "an idle connection is closed at once")
    }
}
