import Foundation
import Media
import TestSupport
import XCTest
@testable import VideoIO

/// Files made to hurt the decoder: each is a clear error, leaves no process behind and writes nothing.
final class HostileVideoTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Each hostile file, named as `HostileVideos.make` writes them, and what its error must say.
    static let expectations: [(file: String, message: String)] = [
        ("truncated.mp4", "moov atom not found"),
        ("truncated-faststart.mp4", "truncated or corrupt"),
        ("playlist.mp4", "it is 'hls', not an MP4/MOV, MKV or AVI container"),
        ("concat.mkv", "it is 'concat', not an MP4/MOV, MKV or AVI container"),
        ("huge.avi", "declares no valid frame size"),
        ("large.avi", "frames of 16000x16000 exceed the limit of 100000000 pixels"),
        ("zero-frames.avi", "the video has no frames"),
        ("empty.mkv", "not a video ffmpeg can read"),
    ]

    func testEveryHostileFileIsAClearErrorAndLeavesNothingRunning() throws {
        try HostileVideos.make(in: scratch)
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: scratch.path))
        for (name, message) in Self.expectations {
            let url = scratch.appendingPathComponent(name)
            XCTAssertThrowsError(try StereoClip.load(.sides(left: url, right: url))) { error in
                XCTAssertTrue("\(error)".contains(message), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains(url.path), "\(name): the message names the file: \(error)")
            }
            XCTAssertEqual(VideoFixtures.processes(mentioning: url.path), [], name)
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: scratch.path)), before, "files appeared")
    }

    func testTheDecoderNeverReadsTheFileAPlaylistNames() throws {
        // Even asked to, with the demuxer forced, ffmpeg refuses the playlist: hls is not on the whitelist.
        try HostileVideos.make(in: scratch)
        let playlist = VideoInfo(path: scratch.appendingPathComponent("playlist.mp4").path, demuxer: "hls", codec: "?",
                                 width: 16, height: 16, frameCount: 1, frameRate: nil)
        XCTAssertThrowsError(try VideoDecoder.decode(playlist, frames: 1) { _, _ in XCTFail("a frame came out") })
    }
}

/// Writes the hostile files of `HostileVideoTests.expectations` into a folder.
enum HostileVideos {
    static func make(in folder: URL) throws {
        func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
        let source = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-frames:v", "30", "-c:v", "libx264"]
        // An MP4 cut in half: its index (moov) is at the end, so nothing is left to read.
        try VideoFixtures.ffmpeg(source + [url("whole.mp4").path])
        let whole = try Data(contentsOf: url("whole.mp4"))
        try whole.prefix(whole.count / 2).write(to: url("truncated.mp4"))
        // The same with the index in front: the container promises 30 frames, the data holds a few.
        try VideoFixtures.ffmpeg(source + ["-movflags", "+faststart", url("whole-faststart.mp4").path])
        let faststart = try Data(contentsOf: url("whole-faststart.mp4"))
        try faststart.prefix(faststart.count / 2).write(to: url("truncated-faststart.mp4"))
        for name in ["whole.mp4", "whole-faststart.mp4"] { try FileManager.default.removeItem(at: url(name)) }
        // Text files under video names that would make ffmpeg read /etc/passwd if their demuxers were allowed.
        try "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n"
            .write(to: url("playlist.mp4"), atomically: true, encoding: .utf8)
        try "ffconcat version 1.0\nfile '/etc/passwd'\n".write(to: url("concat.mkv"), atomically: true, encoding: .utf8)
        // Raw-video AVIs whose headers declare 100000x100000 and 16000x16000 frames (the data is 64x48).
        try VideoFixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "3",
                                  "-c:v", "rawvideo", "-pix_fmt", "bgr24", url("small.avi").path])
        let small = try Data(contentsOf: url("small.avi"))
        try declaringSize(small, width: 100_000, height: 100_000).write(to: url("huge.avi"))
        try declaringSize(small, width: 16_000, height: 16_000).write(to: url("large.avi"))
        try FileManager.default.removeItem(at: url("small.avi"))
        // A video stream with no frames at all.
        try VideoFixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "0", "-c:v", "mjpeg",
                                  url("zero-frames.avi").path])
        try Data().write(to: url("empty.mkv"))
    }

    /// An AVI with the frame size in its main header (avih: width at +32, height at +36 of the chunk's data)
    /// and its stream format (strf: BITMAPINFOHEADER width at +4, height at +8) rewritten.
    static func declaringSize(_ avi: Data, width: Int32, height: Int32) -> Data {
        var bytes = [UInt8](avi)
        func patch(_ offset: Int, _ value: Int32) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        func chunk(_ tag: String) -> Int {
            let needle = Array(tag.utf8)
            return (0..<(bytes.count - 4)).first { Array(bytes[$0..<$0 + 4]) == needle }! + 8  // the fixture has both
        }
        let header = chunk("avih"), format = chunk("strf")
        patch(header + 32, width)
        patch(header + 36, height)
        patch(format + 4, width)
        patch(format + 8, height)
        return Data(bytes)
    }
}
