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
