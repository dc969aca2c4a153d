// `dynstereo checkpoint` end to end: the executable SwiftPM builds beside this test bundle.
import Foundation
import TestSupport
import XCTest

final class CheckpointCommandTests: XCTestCase {
    /// Runs the built `dynstereo` with `arguments`; returns the exit status, stdout and stderr.
    func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [directory, directory.deletingLastPathComponent()].map { $0.appendingPathComponent("dynstereo") }
        let executable = try XCTUnwrap(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                                       "dynstereo is not built beside the tests in \(directory.path)")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    func testListsTensorsThenTotals() throws {
        let result = try run(["checkpoint", SharedData.pth.appendingPathComponent("train_format.pth").path])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertEqual(result.output, """
            0.weight  float32  [4, 3, 3, 3]
            0.bias  float32  [4]
            2.weight  float32  [2, 4, 1, 1]
            2.bias  float32  [2]
            4 tensors, 122 parameters

            """)
    }

    func testBadFilesExitNonZeroWithOneLine() throws {
        for file in ["evil.pth", "truncated.pth", "not_a_checkpoint.pth", "no_such_file.pth"] {
            let result = try run(["checkpoint", SharedData.pth.appendingPathComponent(file).path])
            XCTAssertEqual(result.status, 1, file)
            XCTAssertEqual(result.output, "", file)
            let lines = result.error.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(file): \(result.error)")
            XCTAssertTrue(lines.first?.lowercased().hasPrefix("error: ") ?? false, "\(file): \(result.error)")
        }
        let evil = try run(["checkpoint", SharedData.pth.appendingPathComponent("evil.pth").path])
        XCTAssertTrue(evil.error.contains("os.system"), evil.error)
    }
}
