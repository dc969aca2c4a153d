import Foundation
import Media
import TestSupport
import XCTest

/// `dynstereo evaluate` as a user runs it: the built executable on the golden metrics set.
final class EvaluateCommandTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("evaluate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private var golden: URL { SharedData.golden.appendingPathComponent("metrics") }
    private func path(_ name: String) -> String { golden.appendingPathComponent(name).path }

    func testPrintsTheReferenceMetricsAsOneJSONObjectAndATable() throws {
        let expectedFile = try Data(contentsOf: golden.appendingPathComponent("expected.json"))
        let expected = try XCTUnwrap((try JSONSerialization.jsonObject(with: expectedFile) as? [String: Any])?["metrics"] as? [String: Double])
        for groundTruth in ["gt.npy", "gt_pfm", "gt_kitti"] {
            let run = try Executable.run(["evaluate", "--prediction", path("pred.npy"), "--ground-truth", path(groundTruth),
                                          "--valid", path("valid.npy")])
            XCTAssertEqual(run.status, 0, run.stderr)
            let lines = run.stdout.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "stdout is one JSON object: \(run.stdout)")
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Double], run.stdout)
            XCTAssertEqual(Set(object.keys), Set(expected.keys), groundTruth)
            for (name, reference) in expected {
                let value = try XCTUnwrap(object[name], name)
                // Means within 1e-5 relative; shares within one pixel's worth of the smaller denominator (the
                // temporal error scores 51431 pixels of this set, the end-point error 71409).
                let tolerance = name.hasSuffix("_mean") ? 1e-5 * reference : 100.0 / 51_431
                XCTAssertEqual(value, reference, accuracy: tolerance, "\(groundTruth): \(name)")
            }
            // The member order is the reference's: EPE first, then temporal; mean, then 0.5, 1, 2, 3 px.
            let positions = ["disp_epe_mean", "disp_epe_bad_0.5px", "disp_epe_bad_3px", "disp_temp_epe_mean", "disp_temp_epe_bad_3px"]
                .map { run.stdout.range(of: "\"\($0)\"")!.lowerBound }
            XCTAssertEqual(positions, positions.sorted())
            XCTAssertTrue(run.stderr.contains("5 frames of 256x64"), run.stderr)
            XCTAssertTrue(run.stderr.contains("temporal EPE"), run.stderr)
            XCTAssertTrue(run.stderr.contains("0.45065"), run.stderr)
        }
    }

    func testReadsAResultTarAndReportsTheCrop() throws {
        let writer = TarWriter()
        try writer.addFile(path: "disparity.npy", contents: Data(contentsOf: golden.appendingPathComponent("pred.npy")))
        try writer.finish()
        let archive = scratch.appendingPathComponent("result.tar")
        try writer.data.write(to: archive)
        let run = try Executable.run(["evaluate", "--prediction", archive.path, "--ground-truth", path("gt_pfm"), "--crop", "4"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("cropped by 4 to 248x56"), run.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Double])
        XCTAssertEqual(object.count, 10)
        XCTAssertGreaterThan(object["disp_epe_mean"] ?? 0, 0)
    }

    func testBadInputIsOneLineAndExitOne() throws {
        let fourFrames = scratch.appendingPathComponent("four")
        try FileManager.default.createDirectory(at: fourFrames, withIntermediateDirectories: true)
        for t in 0..<4 {
            try FileManager.default.copyItem(atPath: path("gt_kitti/000\(t).png"), toPath: fourFrames.appendingPathComponent("000\(t).png").path)
        }
        let smallFrames = scratch.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: smallFrames, withIntermediateDirectories: true)
        for t in 0..<5 {
            try PNG.encodeGray16(width: 8, height: 4, samples: [UInt16](repeating: 256, count: 32))
                .write(to: smallFrames.appendingPathComponent("\(t).png"))
        }
        let empty = scratch.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let text = scratch.appendingPathComponent("notes.npy")
        try Data("just some text".utf8).write(to: text)

        let cases: [([String], String)] = [
            (["--prediction", path("pred.npy"), "--ground-truth", fourFrames.path], "the ground truth four has 4 frames, the prediction has 5"),
            (["--prediction", path("pred.npy"), "--ground-truth", smallFrames.path], "is 8x4, the prediction's frames are 256x64"),
            (["--prediction", path("pred.npy"), "--ground-truth", empty.path], "no disparity frames"),
            (["--prediction", text.path, "--ground-truth", path("gt.npy")], "notes.npy is not a disparity"),
            (["--prediction", path("pred.npy"), "--ground-truth", path("gt.npy"), "--valid", path("gt_pfm")], "validity mask"),
            (["--prediction", path("pred.npy"), "--ground-truth", path("gt.npy"), "--crop", "32"], "--crop 32 leaves no pixel"),
            (["--prediction", scratch.appendingPathComponent("none.npy").path, "--ground-truth", path("gt.npy")], "no such file"),
        ]
        for (arguments, fragment) in cases {
            let run = try Executable.run(["evaluate"] + arguments)
            XCTAssertEqual(run.status, 1, "\(arguments): \(run.stderr)")
            XCTAssertEqual(run.stdout, "", "\(arguments)")
            let message = run.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)")
            XCTAssertTrue(message.contains(fragment), "\(arguments): \(message)")
        }
    }
}
