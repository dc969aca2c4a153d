import Foundation
import TestSupport
import XCTest

/// `dynstereo bench` runs a tiny window end to end and refuses sizes the network cannot take. (It times
/// things, but these tests only check that it runs and reports; they never judge a time.)
final class BenchCommandTests: XCTestCase {
    private var common: [String] {
        let reference = SharedData.root.appendingPathComponent("reference")
        return ["--checkpoint", SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path,
                "--left", reference.appendingPathComponent("moto_l.png").path,
                "--right", reference.appendingPathComponent("moto_r.png").path]
    }

    func testATinyWindowReportsItsFiguresAndEveryStage() throws {
        let run = try Executable.run(["bench", "--size", "2x32x64@2", "--sgemm-size", "64"] + common)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("2x32x64@2: "), run.stdout)
        XCTAssertTrue(run.stdout.contains("RESULT {\"size\": \"2x32x64@2\""), run.stdout)
        for stage in ["encoder", "attention stack", "correlation build", "correlation lookup", "update block 1/4",
                      "upsampling", "GRU"] {
            XCTAssertTrue(run.stdout.contains(stage), "no \(stage) line in\n\(run.stdout)")
        }
    }

    func testSizesTheNetworkCannotTakeAreRefused() throws {
        let malformed = try Executable.run(["bench", "--size", "5x128"] + common)
        XCTAssertNotEqual(malformed.status, 0)
        XCTAssertTrue(malformed.stderr.contains("expected TxHxW@iters"), malformed.stderr)

        let unpadded = try Executable.run(["bench", "--size", "5x100x256@10", "--sgemm-size", "0"] + common)
        XCTAssertNotEqual(unpadded.status, 0)
        XCTAssertTrue(unpadded.stderr.contains("multiples of 32"), unpadded.stderr)
    }
}
