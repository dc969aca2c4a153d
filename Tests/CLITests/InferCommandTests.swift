import Foundation
import Media
import TensorKernels
import TestSupport
import XCTest

/// `dynstereo infer` as a user runs it: the built executable, real frames, real files.
final class InferCommandTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("infer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private var checkpoint: String { SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path }
    private func setFolder(_ set: String, _ side: String) -> String { SharedData.goldenSet(set).appendingPathComponent(side).path }

    func testInferOnGoldenFramesWritesEveryOutputAndMatchesTheReference() throws {
        let out = scratch.appendingPathComponent("out")
        let run = try Executable.run(["infer", "--left", setFolder("B", "left"), "--right", setFolder("B", "right"),
                                      "--checkpoint", checkpoint, "--output", out.path, "--iters", "6",
                                      "--focal-px", "500", "--baseline-m", "0.1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("window 1 of 1, 3/3 frames"), run.stderr)
        XCTAssertTrue(run.stdout.contains("3 frames of 260x70"), run.stdout)

        let disparity = try NPY.read(out.appendingPathComponent("disparity.npy"))
        let expected = try NPY.read(SharedData.goldenSet("B").appendingPathComponent("disparity.npy"))
        XCTAssertEqual(disparity.shape, [3, 70, 260])
        // The acceptance bound of the golden data (README): 2e-3 px.
        XCTAssertLessThanOrEqual(disparity.maxAbsDifference(expected).value, 2e-3)

        let names = try FileManager.default.contentsOfDirectory(atPath: setFolder("B", "left")).sorted()
        for name in names {
            for folder in ["disparity", "color", "depth", "video"] {
                let url = out.appendingPathComponent(folder).appendingPathComponent(name)
                XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), "missing \(folder)/\(name)")
            }
        }
        // 16-bit KITTI disparity: round(d * 256).
        let first = try PNG.decode(Data(contentsOf: out.appendingPathComponent("disparity").appendingPathComponent(names[0])))
        XCTAssertEqual(first.width, 260)
        XCTAssertEqual(first.height, 70)
    }

    func testInferRefusesBadInputWithAMessageAndNonZeroExit() throws {
        let out = scratch.appendingPathComponent("out").path
        let cases: [([String], String)] = [
            (["--left", setFolder("B", "left"), "--right", setFolder("B", "right"), "--checkpoint", "/nonexistent.pth", "--output", out],
             "nonexistent.pth"),
            (["--left", setFolder("B", "left"), "--right", setFolder("A", "right"), "--checkpoint", checkpoint, "--output", out],
             "frames"),
            (["--left", scratch.path, "--right", scratch.path, "--checkpoint", checkpoint, "--output", out],
             "no PNG or JPEG frames"),
            (["--left", setFolder("B", "left"), "--right", setFolder("B", "right"),
              "--checkpoint", SharedData.pth.appendingPathComponent("plain.pth").path, "--output", out],
             "missing"),
            (["--left", setFolder("B", "left"), "--right", setFolder("B", "right"), "--checkpoint", checkpoint,
              "--output", out, "--iters", "1"], "iters"),
        ]
        for (arguments, fragment) in cases {
            let run = try Executable.run(["infer"] + arguments)
            XCTAssertNotEqual(run.status, 0, "accepted \(arguments)")
            XCTAssertTrue(run.stderr.localizedCaseInsensitiveContains(fragment), "\(arguments): \(run.stderr)")
            XCTAssertFalse(run.stderr.contains("Fatal error"), run.stderr)
        }
    }
}
