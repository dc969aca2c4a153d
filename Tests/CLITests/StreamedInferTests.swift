// `dynstereo infer` window by window: the reference's answer on a video of many windows, one result per input
// frame from the first window keeping it, progress lines with an ETA, and the service's colour scale.
import Foundation
import Media
import TensorKernels
import TestSupport
import XCTest

final class StreamedInferTests: XCTestCase {
    private var scratch: URL!
    private var checkpoint: String { SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path }

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("streamed-infer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Runs infer into `scratch/output`; returns its disparity and stderr.
    private func infer(_ arguments: [String], output: String) throws -> (disparity: Tensor, stderr: String) {
        let folder = scratch.appendingPathComponent(output)
        let run = try Executable.run(["infer"] + arguments + ["--checkpoint", checkpoint, "--output", folder.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        return (try NPY.read(folder.appendingPathComponent("disparity.npy")), run.stderr)
    }

    /// A progress line's figures: window W of N, frames, windows, iterations, elapsed, and the ETA when known.
    private struct ProgressLine {
        let window: Int, windows: Int, framesDone: Int, framesTotal: Int, windowsDone: Int
        let iterationsDone: Int, iterationsTotal: Int, eta: Double?

        init?(_ line: Substring) {
            let pattern = #"^window (\d+) of (\d+), (\d+)/(\d+) frames, (\d+)/(\d+) windows, (\d+)/(\d+) iterations, [0-9.]+ s elapsed, (about (\d+) s left|time left unknown)$"#
            let text = String(line)
            guard let match = try? NSRegularExpression(pattern: pattern).firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return nil }
            func int(_ group: Int) -> Int { Int((text as NSString).substring(with: match.range(at: group)))! }
            (window, windows, framesDone, framesTotal) = (int(1), int(2), int(3), int(4))
            XCTAssertEqual(int(6), windows)
            (windowsDone, iterationsDone, iterationsTotal) = (int(5), int(7), int(8))
            eta = match.range(at: 10).location == NSNotFound ? nil : Double(int(10))
        }
    }

    func testManyWindowsGiveTheReferencesDisparityFromFoldersAndTarsWithProgressThatParses() throws {
        // Golden set C: 9 frames of 256x64 that the reference ran with kernel 4 (windows of 4, stride 2), 4 iterations.
        let set = SharedData.goldenSet("C")
        let (fromFolders, stderr) = try infer(["--left", set.appendingPathComponent("left").path,
                                               "--right", set.appendingPathComponent("right").path,
                                               "--iters", "4", "--kernel-size", "4"], output: "folders")
        let expected = try NPY.read(set.appendingPathComponent("disparity.npy"))
        XCTAssertEqual(fromFolders.shape, [9, 64, 256])
        XCTAssertLessThanOrEqual(fromFolders.maxAbsDifference(expected).value, 2e-3, "the golden acceptance bound")

        // The same frames as gzipped tars: the same numbers.
        var tars: [String] = []
        for side in ["left", "right"] {
            let writer = TarWriter()
            let folder = set.appendingPathComponent(side)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().reversed() {
                try writer.addFile(path: "\(side)/\(name)", contents: Data(contentsOf: folder.appendingPathComponent(name)))
            }
            try writer.finish()
            let url = scratch.appendingPathComponent("\(side).tar")
            try writer.data.write(to: url)
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
            gzip.arguments = ["-k", url.path]
            try gzip.run()
            gzip.waitUntilExit()
            XCTAssertEqual(gzip.terminationStatus, 0)
            tars.append(url.path + ".gz")
        }
        let fromTars = try infer(["--left", tars[0], "--right", tars[1], "--iters", "4", "--kernel-size", "4",
                                  "--outputs", "npy"], output: "tars").disparity
        XCTAssertEqual(fromTars.data, fromFolders.data)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.appendingPathComponent("tars").path),
                       ["disparity.npy"], "nothing but what --outputs asked for, no partial files left")

        // One line per refinement iteration at every scale and per window: 4 windows (kernel 4, stride 2, on 9
        // frames), 2 + 2 + 4 iterations each.
        let lines = stderr.split(separator: "\n").filter { $0.hasPrefix("window ") }
        let parsed = lines.compactMap(ProgressLine.init)
        XCTAssertEqual(parsed.count, lines.count, "every progress line parses: \(lines.filter { ProgressLine($0) == nil })")
        XCTAssertEqual(parsed.count, 4 * (8 + 1))
        for line in parsed {
            XCTAssertEqual(line.windows, 4)
            XCTAssertEqual(line.framesTotal, 9)
            XCTAssertEqual(line.iterationsTotal, 32)
        }
        var expectedIterations: [Int] = []
        for w in 0..<4 {
            for i in 1...8 { expectedIterations.append(w * 8 + i) }
            expectedIterations.append((w + 1) * 8)
        }
        XCTAssertEqual(parsed.map(\.iterationsDone), expectedIterations)
        for (a, b) in zip(parsed, parsed.dropFirst()) {
            XCTAssertLessThanOrEqual(a.framesDone, b.framesDone)
            XCTAssertLessThanOrEqual(a.windowsDone, b.windowsDone)
        }
        XCTAssertEqual(parsed.last?.framesDone, 9)
        XCTAssertEqual(parsed.last?.windowsDone, 4)
        for line in parsed {
            XCTAssertEqual(line.eta == nil, line.windowsDone == 0, "an estimate once a window is done, none before")
        }
        XCTAssertEqual(parsed.last?.eta, 0)

        // The colour scale is the service's: the video's smallest to largest disparity, inferno.
        let lower: Float = fromFolders.data.min()!
        let upper: Float = fromFolders.data.max()!
        let plane = 64 * 256
        let frame: ArraySlice<Float> = fromFolders.data[0..<plane]
        let scale = ColorMap.Scale(lower: lower, upper: upper)
        let rgb = ColorMap.colorize(frame, width: 256, height: 64, scale: scale)
        let written = try Data(contentsOf: scratch.appendingPathComponent("folders/color/0000.png"))
        XCTAssertEqual(try PNG.encodeRGB8(rgb), written)
    }

    func testAnOddKernelGivesOneResultPerInputFrameFromTheFirstWindowKeepingIt() throws {
        // 12 random-dot frames with kernel 5: the reference's windows (0-4, 2-6, 4-8, ...) give 17 outputs.
        let clip = RandomDotStereo(frames: 12, width: 64, height: 32, backgroundDisparity: 2, squareDisparity: 5,
                                   backgroundPan: 1, squarePan: 1, seed: 13)
        for side in ["left", "right"] {
            let folder = scratch.appendingPathComponent(side)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for t in 0..<12 {
                try PNG.encodeRGB8(side == "left" ? clip.left(frame: t) : clip.right(frame: t))
                    .write(to: folder.appendingPathComponent(String(format: "%04d.png", t)))
            }
        }
        let sides = ["--left", scratch.appendingPathComponent("left").path, "--right", scratch.appendingPathComponent("right").path,
                     "--iters", "2", "--outputs", "npy"]
        let whole = try infer(sides + ["--kernel-size", "5"], output: "whole").disparity
        XCTAssertEqual(whole.shape, [12, 32, 64])
        // The first window (frames 0-4) run alone keeps all five; the video keeps its first four (0-3).
        let first = try infer(sides + ["--kernel-size", "5", "--frame-count", "5"], output: "first").disparity
        // The second window (frames 2-6) run alone; the video keeps its frames 4 and 5 (3 is the first window's).
        let second = try infer(sides + ["--kernel-size", "5", "--start-frame", "2", "--frame-count", "5"], output: "second").disparity
        let plane = 32 * 64
        func frame(_ t: Tensor, _ i: Int) -> Tensor { Tensor(shape: [plane], data: Array(t.data[i * plane..<(i + 1) * plane])) }
        for i in 0..<4 { XCTAssertLessThanOrEqual(frame(whole, i).maxAbsDifference(frame(first, i)).value, 1e-6, "frame \(i)") }
        for i in 4..<6 { XCTAssertLessThanOrEqual(frame(whole, i).maxAbsDifference(frame(second, i - 2)).value, 1e-6, "frame \(i)") }
        XCTAssertGreaterThan(frame(whole, 3).maxAbsDifference(frame(second, 1)).value, 1e-4,
                             "the second window's frame 3 differs, and is not the one kept")
    }
}
