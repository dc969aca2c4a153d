// `dynstereo work --threads`: the cores each running window's network uses, validated like the other flags.
import Foundation
import QueueTestSupport
import TestSupport
import XCTest

final class WorkThreadsTests: XCTestCase {
    private var checkpoint: String { SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path }

    func testZeroOrNegativeThreadsAreAClearErrorBeforeAnythingStarts() throws {
        for value in ["0", "-1", "-8"] {
            let run = try Executable.run(["work", "--database", "postgresql://127.0.0.1:1/none", "--checkpoint", checkpoint,
                                          "--threads=\(value)"])  // `=`: a bare -1 would read as a flag
            XCTAssertNotEqual(run.status, 0, "--threads \(value) accepted")
            let first = run.stderr.split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertEqual(first, "Error: --threads must be at least 1, got \(value)", run.stderr)
            XCTAssertFalse(run.stderr.contains("checkpoint loaded"), "refused before loading anything: \(run.stderr)")
        }
        let concurrency = try Executable.run(["work", "--database", "postgresql://127.0.0.1:1/none", "--checkpoint", checkpoint,
                                              "--concurrency", "0"])
        XCTAssertNotEqual(concurrency.status, 0)
        XCTAssertTrue(concurrency.stderr.hasPrefix("Error: --concurrency must be at least 1, got 0"), concurrency.stderr)
    }

    func testTheWorkerSetsTheCoresPerWindowFromTheFlagOrFromItsShareOfTheMachine() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("work-threads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let cases: [([String], Int)] = [([], cores), (["--concurrency", "2"], max(1, cores / 2)),
                                        (["--threads", "3", "--concurrency", "2"], 3), (["--concurrency", "64"], 1)]
        for (index, (flags, expected)) in cases.enumerated() {
            // A database nobody answers: the worker loads its checkpoint, says what it set, then waits to reconnect.
            let worker = try ChildProcess(try BuiltProducts.dynstereo().path,
                                          ["work", "--database", "postgresql://127.0.0.1:1/none", "--checkpoint", checkpoint] + flags,
                                          logPath: scratch.appendingPathComponent("work\(index).log").path)
            let line = try XCTUnwrap(worker.waitForOutput(matching: #"threadsPerWindow=(\d+)"#, timeout: JobWatch.hangGuard),
                                     "\(flags): \(worker.log)")
            XCTAssertEqual(Int(line[1]), expected, "\(flags)")
            worker.signal(SIGKILL)
            _ = worker.wait(timeout: JobWatch.hangGuard)
        }
    }
}
