// `dynstereo serve` as a process: it serves, drains on SIGTERM, and refuses bad options with one line. The
// test follows the process's log (the port it bound, the start of draining) instead of waiting for time.
import Foundation
import HTTPTestSupport
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A child's merged stdout and stderr as it is written, read on a thread of its own.
private final class ProcessOutput: @unchecked Sendable {
    private let condition = NSCondition()
    private var data = Data()
    private var ended = false

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                condition.lock()
                if chunk.isEmpty { ended = true } else { data += chunk }
                condition.broadcast()
                condition.unlock()
                if chunk.isEmpty { return }
            }
        }
    }

    var text: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// Blocks until the output matches `pattern` (a regular expression) and returns the first match's
    /// capture groups; nil if the output ends (or never comes: a hung child) without one.
    func wait(for pattern: String) -> [String]? {
        let expression = try! NSRegularExpression(pattern: pattern)
        condition.lock()
        defer { condition.unlock() }
        let guardTime = Date(timeIntervalSinceNow: hangGuardSeconds)
        while true {
            let text = String(decoding: data, as: UTF8.self)
            if let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                return (0..<match.numberOfRanges).map { index in
                    Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
                }
            }
            if ended || !condition.wait(until: guardTime) { return nil }
        }
    }

    /// Blocks until the child closes its output; the whole of it.
    func untilEnd() -> String {
        condition.lock()
        let guardTime = Date(timeIntervalSinceNow: hangGuardSeconds)
        while !ended && condition.wait(until: guardTime) {}
        condition.unlock()
        return text
    }
}

final class ServeCommandTests: XCTestCase {
    func testServesThenDrainsOnSIGTERM() throws {
        let (url, schema) = try TestDatabase.makeSchema("http_serve")
        defer { TestDatabase.dropSchema(schema) }
        let process = Process()
        process.executableURL = try BuiltProducts.dynstereo()
        // Port 0: the kernel picks a free one and the server logs it.
        process.arguments = ["serve", "--database", url, "--listen", "127.0.0.1:0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = ProcessOutput(pipe)
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let listening = try XCTUnwrap(output.wait(for: #"listening.*address=127\.0\.0\.1:(\d+)|address=127\.0\.0\.1:(\d+).*listening"#),
                                      "the server did not start listening: \(output.text)")
        let port = try XCTUnwrap(UInt16(listening[1].isEmpty ? listening[2] : listening[1]))
        let client = try RawClient(port: port)
        try client.send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(try client.response().status, 200)

        // A request in progress when SIGTERM arrives still gets its answer.
        try client.send("GET /jobs HTTP/1.1\r\nHost: t\r\n")
        kill(process.processIdentifier, SIGTERM)
        XCTAssertNotNil(output.wait(for: "shutting down"), "the server did not start draining: \(output.text)")
        try client.send("\r\n")
        let drained = try client.response()
        XCTAssertEqual(drained.status, 200)
        XCTAssertEqual(drained.header("Connection"), "close")
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let log = output.untilEnd()
        XCTAssertTrue(log.contains("draining"), log)
    }

    func testBadOptionsExitWithAMessage() throws {
        let binary = try BuiltProducts.dynstereo().path
        // A schema of its own: the server's public schema may hold other branches' migrations.
        let (url, schema) = try TestDatabase.makeSchema("http_badopts")
        defer { TestDatabase.dropSchema(schema) }
        let badListen = try TestDatabase.run(binary, ["serve", "--database", url, "--listen", "nowhere"])
        XCTAssertNotEqual(badListen.status, 0)
        XCTAssertTrue(badListen.output.contains("--listen must be HOST:PORT"), badListen.output)
        let noDatabase = try TestDatabase.run("/usr/bin/env", ["-u", "DATABASE_URL", binary, "serve"])
        XCTAssertNotEqual(noDatabase.status, 0)
        XCTAssertTrue(noDatabase.output.contains("no database given"), noDatabase.output)
    }
}
