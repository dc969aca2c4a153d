import Foundation
import Media
import TensorKernels
import TestSupport
import VideoIO
import XCTest

/// `dynstereo infer` on video files, packed stereo, frame selection, `--max-size` and `--outputs`: the built
/// executable on golden set A (5 frames of 256x64, 4 iterations), compared with its run on the PNG folders.
final class VideoInferTests: XCTestCase {
    private var scratch: URL!
    private var checkpoint: String { SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path }
    private var leftFolder: URL { SharedData.goldenSet("A").appendingPathComponent("left") }
    private var rightFolder: URL { SharedData.goldenSet("A").appendingPathComponent("right") }

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("video-infer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func file(_ name: String) -> URL { scratch.appendingPathComponent(name) }

    /// Runs `infer` with the golden weights at 4 iterations into `output`; returns the disparity it wrote.
    @discardableResult
    private func infer(_ inputs: [String], output: String, extra: [String] = []) throws -> Tensor? {
        let run = try Executable.run(["infer"] + inputs + ["--checkpoint", checkpoint, "--output", file(output).path,
                                                           "--iters", "4"] + extra)
        XCTAssertEqual(run.status, 0, run.stderr)
        let npy = file(output).appendingPathComponent("disparity.npy")
        return FileManager.default.fileExists(atPath: npy.path) ? try NPY.read(npy) : nil
    }

    private func files(in output: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: file(output).path)
        return ((enumerator?.allObjects as? [String]) ?? []).sorted()
    }

    func testLosslessVideosAndAPackedFileGiveThePNGFoldersDisparity() throws {
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"))
        try VideoFixtures.losslessVideo(of: rightFolder, to: file("right.mkv"))
        try VideoFixtures.ffmpeg(["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path,
                                  "-framerate", "30", "-i", rightFolder.appendingPathComponent("%04d.png").path,
                                  "-filter_complex", "[0:v][1:v]hstack=inputs=2", "-c:v", "ffv1", "-pix_fmt", "bgr0",
                                  file("sbs.mkv").path])
        let folders = try XCTUnwrap(infer(["--left", leftFolder.path, "--right", rightFolder.path], output: "folders",
                                          extra: ["--outputs", "npy"]))
        let videos = try XCTUnwrap(infer(["--left", file("left.mkv").path, "--right", file("right.mkv").path], output: "videos"))
        let packed = try XCTUnwrap(infer(["--stereo", file("sbs.mkv").path, "--layout", "sbs"], output: "packed",
                                         extra: ["--outputs", "npy"]))
        XCTAssertEqual(folders.shape, [5, 64, 256])
        XCTAssertEqual(videos.shape, [5, 64, 256])
        XCTAssertLessThanOrEqual(videos.maxAbsDifference(folders).value, 1e-5)
        XCTAssertLessThanOrEqual(packed.maxAbsDifference(videos).value, 1e-5)

        // The video run wrote every default kind, frames named by their source index, and the two MP4s.
        let written = files(in: "videos")
        for name in ["0000", "0004"] {
            for folder in ["disparity", "color", "video"] { XCTAssertTrue(written.contains("\(folder)/\(name).png"), "\(folder)/\(name)") }
        }
        XCTAssertFalse(written.contains { $0.hasPrefix("depth") || $0.hasPrefix("points") }, "uncalibrated: \(written)")
        let color = try VideoFixtures.probe(file("videos").appendingPathComponent("color.mp4").path)
        let video = try VideoFixtures.probe(file("videos").appendingPathComponent("video.mp4").path)
        XCTAssertTrue(color.frames == 5 && color.width == 256 && color.height == 64 && color.rate == "30/1", "\(color)")
        XCTAssertTrue(video.frames == 5 && video.width == 512 && video.height == 64 && video.pixelFormat == "yuv420p", "\(video)")
        XCTAssertEqual(files(in: "folders"), ["disparity.npy"], "--outputs npy writes nothing else")
    }

    func testFrameSelectionNamesTheSourceFramesAndSetsTheRate() throws {
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"), rate: 24)
        try VideoFixtures.losslessVideo(of: rightFolder, to: file("right.mkv"), rate: 24)
        let selection = ["--start-frame", "1", "--frame-step", "2", "--frame-count", "2"]
        let fromVideo = try XCTUnwrap(infer(["--left", file("left.mkv").path, "--right", file("right.mkv").path],
                                            output: "video", extra: selection + ["--outputs", "npy,disparity,color_mp4"]))
        XCTAssertEqual(files(in: "video"), ["color.mp4", "disparity", "disparity.npy", "disparity/0001.png", "disparity/0003.png"])
        XCTAssertEqual(try VideoFixtures.probe(file("video").appendingPathComponent("color.mp4").path).rate, "12/1")

        // The same two frames as a folder of their own PNGs: the same disparity.
        let picked = file("picked")
        for side in ["left", "right"] {
            let folder = picked.appendingPathComponent(side)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for name in ["0001.png", "0003.png"] {
                try FileManager.default.copyItem(at: SharedData.goldenSet("A").appendingPathComponent(side).appendingPathComponent(name),
                                                 to: folder.appendingPathComponent(name))
            }
        }
        let fromPNGs = try XCTUnwrap(infer(["--left", picked.appendingPathComponent("left").path,
                                            "--right", picked.appendingPathComponent("right").path],
                                           output: "pngs", extra: ["--outputs", "npy"]))
        XCTAssertEqual(fromVideo.shape, [2, 64, 256])
        XCTAssertLessThanOrEqual(fromVideo.maxAbsDifference(fromPNGs).value, 1e-5)
    }

    func testMaxSizeEqualsTheNetworkOnTheDownscaledClipThenUpsampled() throws {
        let capped = try XCTUnwrap(infer(["--left", leftFolder.path, "--right", rightFolder.path], output: "capped",
                                         extra: ["--max-size", "128", "--outputs", "npy"]))
        // By hand: area-average every frame to 128x32, run the network at that size, upsample the result.
        let small = file("small")
        for side in ["left", "right"] {
            let folder = small.appendingPathComponent(side)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let set = try FrameSet.load(SharedData.goldenSet("A").appendingPathComponent(side))
            for (name, image) in zip(set.fileNames, set.images) {
                try PNG.encodeRGB8(ResolutionCap.downscale(image, width: 128, height: 32)).write(to: folder.appendingPathComponent(name))
            }
        }
        let smallDisparity = try XCTUnwrap(infer(["--left", small.appendingPathComponent("left").path,
                                                  "--right", small.appendingPathComponent("right").path],
                                                 output: "small-run", extra: ["--outputs", "npy"]))
        XCTAssertEqual(smallDisparity.shape, [5, 32, 128])
        let expected = ResolutionCap.upsample(smallDisparity, width: 256, height: 64)
        XCTAssertEqual(capped.shape, [5, 64, 256])
        XCTAssertLessThanOrEqual(capped.maxAbsDifference(expected).value, 1e-5)
        // Not the full-resolution answer: the cap changed what the network saw.
        let full = try NPY.read(SharedData.goldenSet("A").appendingPathComponent("disparity.npy"))
        XCTAssertGreaterThan(capped.maxAbsDifference(full).value, 1e-2)
    }

    func testCalibratedRunsWritePointClouds() throws {
        try infer(["--left", leftFolder.path, "--right", rightFolder.path], output: "points",
                  extra: ["--focal-px", "200", "--baseline-m", "0.1", "--max-depth-m", "5", "--outputs", "points,depth"])
        let written = files(in: "points")
        XCTAssertEqual(written.filter { $0.hasSuffix(".ply") }.count, 5)
        XCTAssertEqual(written.filter { $0.hasSuffix(".png") }.count, 5)
        let ply = try Data(contentsOf: file("points").appendingPathComponent("points/0000.ply"))
        let header = String(decoding: ply.prefix(400), as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("ply\nformat binary_little_endian 1.0\n"), header)
    }

    func testHostileAndMismatchedInputsAreOneLineErrorsWithExitOne() throws {
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"))
        try VideoFixtures.ffmpeg(["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path,
                                  "-vf", "crop=255:64:0:0", "-c:v", "ffv1", file("odd.mkv").path])
        try "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n".write(to: file("playlist.mp4"), atomically: true, encoding: .utf8)
        try "ffconcat version 1.0\nfile '/etc/passwd'\n".write(to: file("list.mkv"), atomically: true, encoding: .utf8)
        let out = file("out").path
        let cases: [([String], String)] = [
            (["--left", file("playlist.mp4").path, "--right", file("left.mkv").path], "'hls', not an MP4/MOV, MKV or AVI"),
            (["--left", file("left.mkv").path, "--right", file("list.mkv").path], "'concat', not an MP4/MOV, MKV or AVI"),
            (["--stereo", file("odd.mkv").path, "--layout", "sbs"], "layout sbs needs an even width"),
            (["--left", file("left.mkv").path, "--right", file("odd.mkv").path], "left frames are 256x64, right frames are 255x64"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--start-frame", "9"], "past the last frame"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--fps", "10"], "--fps is for frame folders"),
        ]
        for (arguments, message) in cases {
            let run = try Executable.run(["infer"] + arguments + ["--checkpoint", checkpoint, "--output", out])
            XCTAssertEqual(run.status, 1, "\(arguments): \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(message), "\(arguments): \(run.stderr)")
            XCTAssertEqual(run.stderr.split(separator: "\n").filter { $0.hasPrefix("Error") }.count, 1, run.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(arguments) created the output folder")
            XCTAssertEqual(VideoFixtures.processes(mentioning: scratch.path), [])
        }
        // Flag mistakes are usage errors, caught before anything is read.
        let usage: [([String], String)] = [
            (["--stereo", file("left.mkv").path], "--stereo needs --layout"),
            (["--stereo", file("left.mkv").path, "--layout", "lr"], "--layout must be sbs or tb"),
            (["--left", file("left.mkv").path], "give --left and --right, or --stereo with --layout"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--outputs", "npy,points"], "points needs --focal-px"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--outputs", "npy,mp4"], "unknown result 'mp4'"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--frame-step", "0"], "--frame-step must be 1 or more"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--max-size", "8"], "--max-size must be at least 32"),
            (["--left", file("left.mkv").path, "--right", file("left.mkv").path, "--cx-px", "3"], "--cx-px is for points/"),
        ]
        for (arguments, message) in usage {
            let run = try Executable.run(["infer"] + arguments + ["--checkpoint", checkpoint, "--output", out])
            XCTAssertNotEqual(run.status, 0, "\(arguments)")
            XCTAssertTrue(run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
    }
}
