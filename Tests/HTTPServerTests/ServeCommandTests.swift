// `dynstereo serve` as a process: it serves, drains on SIGTERM, and refuses bad options with one line.
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ServeCommandTests: XCTestCase {
    func testServesThenDrainsOnSIGTERM() throws {
        let (url, schema) = try TestDatabase.makeSchema("http_serve")
        defer { TestDatabase.dropSchema(schema) }
        let port = UInt16.random(in: 20_000...40_000)
        let process = Process()
        process.executableURL = try BuiltProducts.dynstereo()
        process.arguments = ["serve", "--database", url, "--listen", "127.0.0.1:\(port)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        var connection: RawClient?
        let deadline = Date().addingTimeInterval(20)
        while connection == nil && Date() < deadline {
            connection = try? RawClient(port: port)
            if connection == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        let client = try XCTUnwrap(connection, "the server did not start listening")
        try client.send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.response().status, 200)

        // A request in progress when SIGTERM arrives still gets its answer.
        try client.send("GET /jobs HTTP/1.1\r\nHost: t\r\n")
        Thread.sleep(forTimeInterval: 0.2)
        kill(process.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.2)
        try client.send("\r\n")
        let drained = try client.response()
        XCTAssertEqual(drained.status, 200)
        XCTAssertEqual(drained.header("Connection"), "close")
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(log.contains("draining"), log)
    }

    func testBadOptionsExitWithAMessage() throws {
        let binary = try BuiltProducts.dynstereo().path
        let badListen = try TestDatabase.run(binary, ["serve", "--database", TestDatabase.serverURL, "--listen", "nowhere"])
        XCTAssertNotEqual(badListen.status, 0)
        XCTAssertTrue(badListen.output.contains("--listen must be HOST:PORT"), badListen.output)
        let noDatabase = try TestDatabase.run("/usr/bin/env", ["-u", "DATABASE_URL", binary, "serve"])
        XCTAssertNotEqual(noDatabase.status, 0)
        XCTAssertTrue(noDatabase.output.contains("no database given"), noDatabase.output)
    }
}
