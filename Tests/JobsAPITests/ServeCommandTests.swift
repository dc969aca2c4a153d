// `dynstereo serve` as a process: it serves, drains on SIGTERM, and refuses bad options with one line. The
// test follows the process's output (the port it bound, the start of draining) instead of waiting for time.
import Foundation
import HTTPTestSupport
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ServeCommandTests: XCTestCase {
    func testServesThenDrainsOnSIGTERM() throws {
        let (url, schema) = try TestDatabase.makeSchema("http_serve")
        defer { TestDatabase.dropSchema(schema) }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("dynstereo-\(schema)-serve.log")
        defer { try? FileManager.default.removeItem(at: log) }
        // Port 0: the kernel picks a free one and the server logs it.
        let process = try ChildProcess(try BuiltProducts.dynstereo().path,
                                       ["serve", "--database", url, "--listen", "127.0.0.1:0"], logPath: log.path)

        let listening = try XCTUnwrap(process.waitForOutput(matching: #"listening.*address=127\.0\.0\.1:(\d+)|address=127\.0\.0\.1:(\d+).*listening"#,
                                                            timeout: hangGuardSeconds),
                                      "the server did not start listening: \(process.log)")
        let port = try XCTUnwrap(UInt16(listening[1].isEmpty ? listening[2] : listening[1]))
        let client = try RawClient(port: port)
        try client.send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.response().status, 200)

        // A request in progress when SIGTERM arrives still gets its answer.
        try client.send("GET /jobs HTTP/1.1\r\nHost: t\r\n")
        process.signal(SIGTERM)
        XCTAssertNotNil(process.waitForOutput(matching: "shutting down", timeout: hangGuardSeconds),
                        "the server did not start draining: \(process.log)")
        try client.send("\r\n")
        let drained = try client.response()
        XCTAssertEqual(drained.status, 200)
        XCTAssertEqual(drained.header("Connection"), "close")
        XCTAssertEqual(process.wait(timeout: hangGuardSeconds), 0, process.log)
        XCTAssertTrue(process.log.contains("draining"), process.log)
    }

    func testBadOptionsExitWithAMessage() throws {
        let binary = try BuiltProducts.dynstereo().path
        // A schema of its own: the server's public schema may hold other branches' migrations.
        let (url, schema) = try TestDatabase.makeSchema("http_badopts")
        defer { TestDatabase.dropSchema(schema) }
        let badListen = try TestDatabase.run(binary, ["serve", "--database", url, "--listen", "nowhere"])
        XCTAssertNotEqual(badListen.status, 0)
        XCTAssertTrue(badListen.output.contains("--listen must be HOST:PORT"), badListen.output)
        let badCache = try TestDatabase.run(binary, ["serve", "--database", url, "--poll-cache-mb=-1"])
        XCTAssertNotEqual(badCache.status, 0)
        XCTAssertTrue(badCache.output.contains("--poll-cache-mb must be 0 (off) to 1048576"), badCache.output)
        let noDatabase = try TestDatabase.run("/usr/bin/env", ["-u", "DATABASE_URL", binary, "serve"])
        XCTAssertNotEqual(noDatabase.status, 0)
        XCTAssertTrue(noDatabase.output.contains("no database given"), noDatabase.output)
    }
}
