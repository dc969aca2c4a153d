import Foundation
import Media
import TestSupport
import VideoPlan
import XCTest
@testable import VideoIO

/// Videos made from golden frames decode back to exactly those frames, in every input form.
final class VideoDecodingTests: XCTestCase {
    private var scratch: URL!
    private var leftFolder: URL { SharedData.goldenSet("A").appendingPathComponent("left") }
    private var rightFolder: URL { SharedData.goldenSet("A").appendingPathComponent("right") }

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("videoio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func file(_ name: String) -> URL { scratch.appendingPathComponent(name) }

    private func pngFrames(_ folder: URL) throws -> [RGBImage] {
        try FrameSet.load(folder).images
    }

    func testProbeCountsFramesAndReadsTheStream() throws {
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"), rate: 25)
        let info = try VideoProbe.probe(file("left.mkv").path)
        XCTAssertEqual(info.demuxer, "matroska")
        XCTAssertEqual(info.codec, "ffv1")
        XCTAssertEqual(info.width, 256)
        XCTAssertEqual(info.height, 64)
        XCTAssertEqual(info.frameCount, 5)
        XCTAssertEqual(info.frameRate, FrameRate(numerator: 25, denominator: 1))
    }

    func testLosslessVideosDecodeToThePNGsBytes() throws {
        let expected = try pngFrames(leftFolder)
        // FFV1 in MKV, and H.264 at -qp 0 in RGB (libx264rgb) in MP4: both lossless.
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"))
        try VideoFixtures.ffmpeg(["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path,
                                  "-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24", file("left.mp4").path])
        for name in ["left.mkv", "left.mp4"] {
            var frames: [RGBImage] = []
            try VideoDecoder.decode(VideoProbe.probe(file(name).path), frames: 5) { index, frame in
                XCTAssertEqual(index, frames.count)
                frames.append(frame)
            }
            XCTAssertEqual(frames.count, 5, name)
            for (t, (frame, png)) in zip(frames, expected).enumerated() {
                XCTAssertTrue(frame == png, "\(name) frame \(t) differs from the PNG")
            }
        }
    }

    func testLossyContainersAndCodecsDecodeTooAtTheirSize() throws {
        let input = ["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path]
        let cases: [(String, [String], String)] = [
            ("h264.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "mov"),
            ("h265.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"], "mov"),
            ("prores.mov", ["-c:v", "prores_ks"], "mov"),
            ("mjpeg.avi", ["-c:v", "mjpeg", "-q:v", "2"], "avi"),
            ("vp9.mkv", ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30"], "matroska"),
        ]
        let expected = try pngFrames(leftFolder)
        for (name, codec, demuxer) in cases {
            try VideoFixtures.ffmpeg(input + codec + [file(name).path])
            let info = try VideoProbe.probe(file(name).path)
            XCTAssertEqual(info.demuxer, demuxer, name)
            XCTAssertEqual(info.frameCount, 5, name)
            var count = 0
            try VideoDecoder.decode(info, frames: 5) { index, frame in
                XCTAssertEqual(frame.width, 256)
                XCTAssertEqual(frame.height, 64)
                // Lossy, but the same picture: mean absolute difference well under 8 levels.
                let difference = zip(frame.pixels, expected[index].pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
                XCTAssertLessThan(Double(difference) / Double(frame.pixels.count), 8, "\(name) frame \(index)")
                count += 1
            }
            XCTAssertEqual(count, 5, name)
        }
    }

    func testFrameSelectionPicksExactlyTheFramesItSays() throws {
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"))
        try VideoFixtures.losslessVideo(of: rightFolder, to: file("right.mkv"))
        let left = try pngFrames(leftFolder), right = try pngFrames(rightFolder)
        let selection = FrameSelection(start: 1, step: 2, count: 2)
        XCTAssertEqual(selection.indices(of: 5), [1, 3])
        for input in [StereoInput.sides(left: file("left.mkv"), right: file("right.mkv")),
                      .sides(left: leftFolder, right: rightFolder)] {
            let clip = try StereoClip.load(input, selection: selection)
            XCTAssertEqual(clip.names, ["0001", "0003"])
            XCTAssertTrue(clip.left == [left[1], left[3]] && clip.right == [right[1], right[3]], "\(input)")
        }
        // A step past the end keeps the first frame only; a count larger than what is left keeps what is left.
        XCTAssertEqual(try StereoClip.load(.sides(left: file("left.mkv"), right: file("right.mkv")),
                                           selection: FrameSelection(start: 2, step: 10)).names, ["0002"])
        XCTAssertEqual(try StereoClip.load(.sides(left: file("left.mkv"), right: file("right.mkv")),
                                           selection: FrameSelection(start: 3, count: 10)).names, ["0003", "0004"])
        XCTAssertThrowsError(try StereoClip.load(.sides(left: file("left.mkv"), right: file("right.mkv")),
                                                 selection: FrameSelection(start: 5))) { error in
            XCTAssertTrue("\(error)".contains("past the last frame"), "\(error)")
        }
    }

    func testPackedVideosSplitIntoTheTwoViews() throws {
        let left = try pngFrames(leftFolder), right = try pngFrames(rightFolder)
        for (layout, stack) in [(StereoLayout.sideBySide, "hstack"), (.topBottom, "vstack")] {
            let packed = file("packed-\(layout.rawValue).mkv")
            try VideoFixtures.ffmpeg(["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path,
                                      "-framerate", "30", "-i", rightFolder.appendingPathComponent("%04d.png").path,
                                      "-filter_complex", "[0:v][1:v]\(stack)=inputs=2", "-c:v", "ffv1", "-pix_fmt", "bgr0",
                                      packed.path])
            let clip = try StereoClip.load(.packed(packed, layout))
            XCTAssertEqual(clip.names, ["0000", "0001", "0002", "0003", "0004"])
            XCTAssertTrue(clip.left == left, "\(layout) left")
            XCTAssertTrue(clip.right == right, "\(layout) right")
            XCTAssertEqual(clip.sourceFrameRate, FrameRate(numerator: 30, denominator: 1))
        }
    }

    func testOddPackedSizesAndDisagreeingSidesAreRefusedBeforeDecoding() throws {
        let input = ["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path]
        try VideoFixtures.ffmpeg(input + ["-vf", "crop=255:63:0:0", "-c:v", "ffv1", file("odd.mkv").path])
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"))
        try VideoFixtures.losslessVideo(of: rightFolder, to: file("right25.mkv"), rate: 25)
        try VideoFixtures.ffmpeg(input + ["-frames:v", "3", "-c:v", "ffv1", file("short.mkv").path])
        try VideoFixtures.ffmpeg(input + ["-vf", "crop=128:64:0:0", "-c:v", "ffv1", file("narrow.mkv").path])
        let cases: [(StereoInput, String)] = [
            (.packed(file("odd.mkv"), .sideBySide), "layout sbs needs an even width, the frames are 255x63"),
            (.packed(file("odd.mkv"), .topBottom), "layout tb needs an even height, the frames are 255x63"),
            (.sides(left: file("left.mkv"), right: file("right25.mkv")), "left runs at 30/1 frames per second, right at 25/1"),
            (.sides(left: file("left.mkv"), right: file("short.mkv")), "left has 5 frames, right has 3"),
            (.sides(left: file("left.mkv"), right: file("narrow.mkv")), "left frames are 256x64, right frames are 128x64"),
            (.sides(left: leftFolder, right: file("short.mkv")), "left has 5 frames, right has 3"),
        ]
        for (input, message) in cases {
            XCTAssertThrowsError(try StereoClip.load(input)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(input): \(error)")
            }
        }
    }

    func testTarsAndFoldersAreToldApartFromVideos() throws {
        try VideoFixtures.losslessVideo(of: leftFolder, to: file("left.mkv"))
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-cf", file("frames.archive").path, "-C", leftFolder.path, "."]
        try tar.run()
        tar.waitUntilExit()
        XCTAssertTrue(try StereoClip.isFrameCollection(leftFolder))
        XCTAssertTrue(try StereoClip.isFrameCollection(file("frames.archive")), "ustar magic, no .tar extension")
        XCTAssertFalse(try StereoClip.isFrameCollection(file("left.mkv")))
    }
}
