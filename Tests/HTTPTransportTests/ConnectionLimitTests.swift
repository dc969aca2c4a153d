// Idle connections cannot lock new clients out: at the connection cap the longest-idle keep-alive connection
// makes room, one client address holds a bounded share, and with nothing idle a newcomer gets 503 at once.
// The server's clock never moves here, so no idle timeout is what frees a slot.
import Foundation
import HTTPTestSupport
import XCTest
@testable import HTTPTransport
#if canImport(Glibc)
import Glibc
#endif

/// Answers every request with 200 and `ok`; renders the transport's refusals as text with their status.
private final class OKApplication: HTTPApplication, @unchecked Sendable {
    func prepare(_ head: HTTPRequestHead) -> RequestPreparation<[UInt8]> { .accept(MemoryBodySink(), maxBytes: 1024) }
    func respond(to request: HTTPRequest<[UInt8]>) -> HTTPResponse {
        HTTPResponse(status: .ok, contentType: "text/plain", bytes: Array("ok\n".utf8))
    }
    func responded(to head: HTTPRequestHead?, status: HTTPStatus) {}
    func response(for error: Error) -> HTTPResponse {
        HTTPResponse(status: (error as? HTTPTransportError)?.status ?? .internalError, contentType: "text/plain",
                     bytes: Array("\((error as? HTTPTransportError)?.code ?? "\(error)")\n".utf8))
    }
}

final class ConnectionLimitTests: XCTestCase {
    private let clock = ManualServerClock()
    private let events = ServerEventLog()
    private var server: HTTPServer<OKApplication>?

    private func start(_ change: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> HTTPServer<OKApplication> {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.handlerThreads = 2
        change(&configuration)
        let server = HTTPServer(configuration: configuration, application: OKApplication(), clock: clock, events: events.record)
        try server.start()
        self.server = server
        return server
    }

    override func tearDown() {
        server?.shutdown()
        server?.wait()
    }

    /// Peers the server closed, in order.
    private var closedPeers: [String] {
        events.all.compactMap { if case let .closed(peer) = $0 { return peer } else { return nil } }
    }

    private func get(_ client: RawClient) throws -> RawResponse {
        try client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        return try client.response()
    }

    /// This process holds both ends of every connection: thousands of descriptors.
    private func raiseDescriptorLimit(to wanted: rlim_t) throws {
        var limit = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit), 0)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(wanted, limit.rlim_max)
            XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit), 0)
        }
        XCTAssertGreaterThanOrEqual(limit.rlim_cur, wanted, "the hard descriptor limit is too low for this test")
    }

    func testTwoThousandIdleConnectionsDoNotLockOutANewClient() throws {
        try raiseDescriptorLimit(to: 8192)
        let server = try start()
        let cap = server.configuration.maxConnections
        XCTAssertEqual(cap, 1024)
        // 250 from each of eight loopback addresses, under the per-address bound of 256: only the overall cap
        // is reached, and passed by far.
        var idle: [RawClient] = []
        for index in 0..<2000 {
            idle.append(try RawClient(port: server.port, source: "127.0.0.\(2 + index % 8)"))
        }
        // Connections are accepted in the order they were made, so this is the last of them.
        XCTAssertTrue(events.waitUntilAccepted(idle.last!))
        let started = clock.now()

        let newcomer = try RawClient(port: server.port, source: "127.0.0.100")
        let response = try get(newcomer)
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertEqual(clock.now(), started, "no idle timeout freed the slot")

        // The longest idle made room, oldest first: 2,001 connections, 1,024 slots.
        let evicted = 2001 - cap
        XCTAssertEqual(Set(closedPeers), Set(idle[..<evicted].map(\.localAddress)))
        XCTAssertTrue(idle[0].isClosedByServer() && idle[evicted - 1].isClosedByServer())
        XCTAssertTrue(idle[evicted...].allSatisfy { $0.hasReceivedNothing() }, "a newer idle connection was closed")
        XCTAssertFalse(events.all.contains { if case .refused = $0 { return true } else { return false } })
        XCTAssertEqual(try get(newcomer).status, 200, "the newcomer keeps its connection")
    }

    func testOneAddressHoldsABoundedShareAndItsOwnLongestIdleMakesRoom() throws {
        let server = try start { $0.maxConnectionsPerAddress = 8 }
        var greedy: [RawClient] = []
        for _ in 0..<10 { greedy.append(try RawClient(port: server.port, source: "127.0.0.2")) }
        XCTAssertTrue(events.waitUntilAccepted(greedy.last!))
        let other = try RawClient(port: server.port, source: "127.0.0.3")
        XCTAssertEqual(try get(other).status, 200)
        XCTAssertEqual(closedPeers, greedy[..<2].map(\.localAddress), "only the address's own two longest idle go")
        XCTAssertTrue(greedy[2...].allSatisfy { $0.hasReceivedNothing() })
        XCTAssertEqual(try get(greedy[9]).status, 200)
    }

    func testAtTheCapWithEveryConnectionInARequestANewcomerGets503AtOnce() throws {
        let server = try start { $0.maxConnections = 4 }
        let partial = "GET / HTTP/1.1\r\nHo"
        var busy: [RawClient] = []
        for _ in 0..<4 {
            let client = try RawClient(port: server.port)
            try client.send(partial)
            XCTAssertTrue(events.waitUntilReceived(client, bytes: partial.utf8.count))
            busy.append(client)
        }
        let newcomer = try RawClient(port: server.port)
        let refused = try newcomer.response()
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.text, "server_busy\n")
        XCTAssertEqual(refused.header("Connection"), "close")
        XCTAssertTrue(newcomer.isClosedByServer())
        XCTAssertTrue(events.wait(for: .refused(peer: newcomer.localAddress)))
        XCTAssertEqual(closedPeers, [], "a connection in a request is never closed to make room")
        // The requests in progress go on.
        try busy[0].send("st: t\r\n\r\n")
        XCTAssertEqual(try busy[0].response().status, 200)
        XCTAssertTrue(busy[1...].allSatisfy { $0.hasReceivedNothing() })
    }
}
