// Video uploads against the real job store: checked before a job exists (probed, never decoded), stored in
// chunks, and prepared by a claimable step before the windows.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

final class VideoUploadTests: StoreServerTestCase {
    private var videos: URL!

    override var schemaPrefix: String { "upload_" }

    override func setUpWithError() throws {
        videos = FileManager.default.temporaryDirectory.appendingPathComponent("video-uploads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: videos, withIntermediateDirectories: true)
        try super.setUpWithError()
    }

    override func tearDown() {
        super.tearDown()
        try? FileManager.default.removeItem(at: videos)
    }

    /// A test-pattern video of `frames` frames of `size` at `rate` fps, made by ffmpeg: FFV1 (`.mkv`), or
    /// uncompressed (`.avi`, for a file of a known, large size).
    private func video(_ name: String, frames: Int, size: String = "64x48", rate: Int = 10) throws -> [UInt8] {
        let file = videos.appendingPathComponent(name)
        let codec = name.hasSuffix(".avi") ? ["-c:v", "rawvideo", "-pix_fmt", "bgr24"] : ["-c:v", "ffv1"]
        try VideoFixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=\(size):rate=\(rate)", "-frames:v", String(frames)]
                                 + codec + [file.path])
        return [UInt8](try Data(contentsOf: file))
    }

    private func submit(_ parts: [(name: String, filename: String, bytes: [UInt8])], fields: [(String, String)] = []) throws -> RawResponse {
        var form = MultipartBody()
        for part in parts { form.file(part.name, filename: part.filename, part.bytes) }
        for (name, value) in fields { form.field(name, value) }
        let connection = try client()
        try connection.send(form.request())
        return try connection.response()
    }

    private var message: (RawResponse) -> String {
        { (($0.json["error"] as? [String: Any])?["message"] as? String) ?? "" }
    }

    /// Nothing is left of a refused upload: no job, no stored chunk, no temp file, no ffmpeg or ffprobe.
    private func assertNothingLeft(_ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try count("jobs"), 0, "\(label): no job", file: file, line: line)
        XCTAssertEqual(try count("job_uploads"), 0, "\(label): no upload chunk", file: file, line: line)
        XCTAssertEqual(uploadFiles(in: uploads), [], "\(label): no temp file", file: file, line: line)
        XCTAssertEqual(VideoFixtures.processes(mentioning: uploads.path), [], "\(label): no process", file: file, line: line)
    }

    func testHostileVideosAreRefusedAtUploadAndLeaveNothing() throws {
        try HostileVideos.make(in: videos)
        let cases: [(file: String, status: Int, code: String, says: String)] = [
            ("truncated.mp4", 422, "invalid_video", "moov atom not found"),
            ("playlist.mp4", 422, "invalid_video", "it is 'hls', not an MP4/MOV, MKV or AVI container"),
            ("concat.mkv", 422, "invalid_video", "it is 'concat', not an MP4/MOV, MKV or AVI container"),
            ("huge.avi", 422, "invalid_video", "declares no valid frame size"),
            ("large.avi", 413, "frame_too_large", "frames of 16000x16000 exceed the limit of \(4096 * 4096) pixels"),
            ("zero-frames.avi", 422, "no_frames", "the video has no frames"),
            ("empty.mkv", 422, "invalid_video", "not a video ffmpeg can read"),
        ]
        for (name, status, code, says) in cases {
            let bytes = [UInt8](try Data(contentsOf: videos.appendingPathComponent(name)))
            for parts in [[("left", name, bytes), ("right", name, bytes)], [("stereo", name, bytes)]] {
                let response = try submit(parts, fields: parts.count == 1 ? [("layout", "sbs")] : [])
                XCTAssertEqual(response.status, status, "\(name): \(response.text)")
                XCTAssertEqual(response.errorCode, code, name)
                XCTAssertTrue(message(response).contains(says), "\(name): \(message(response))")
                XCTAssertTrue(message(response).hasPrefix(parts.count == 1 ? "stereo: " : "left: "), "names the part: \(message(response))")
                XCTAssertFalse(message(response).contains(uploads.path), "the server's paths stay private: \(message(response))")
                try assertNothingLeft(name)
            }
        }
    }

    func testMismatchedOrOverlongVideosAreRefusedBeforeAJobExists() throws {
        server.shutdown()
        server.wait()
        apiConfiguration.frameLimits.maxFrames = 5
        try startServer()
        let ten = try video("ten.mkv", frames: 10)
        let cases: [(String, [(name: String, filename: String, bytes: [UInt8])], [(String, String)], Int, String, String)] = [
            ("counts differ", [("left", "l.mkv", ten), ("right", "r.mkv", try video("eight.mkv", frames: 8))], [("frame_count", "3")],
             422, "frame_count_mismatch", "left has 10 frames but right has 8"),
            ("sizes differ", [("left", "l.mkv", ten), ("right", "r.mkv", try video("wide.mkv", frames: 10, size: "80x48"))], [("frame_count", "3")],
             422, "frame_size_mismatch", "left frames are 64x48, right frames are 80x48"),
            ("rates differ", [("left", "l.mkv", ten), ("right", "r.mkv", try video("fast.mkv", frames: 10, rate: 25))], [("frame_count", "3")],
             422, "frame_rate_mismatch", "left runs at 10/1 frames per second, right at 25/1"),
            ("too many after selection", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("frame_step", "1")],
             413, "too_many_frames", "the selection keeps 10 frames, more than this server's limit of 5"),
            ("past the end", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("start_frame", "10")],
             422, "no_frames_selected", "start_frame 10 is past the last frame (the video has 10)"),
            ("fps with a video", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("frame_count", "3"), ("fps", "24")],
             422, "invalid_parameters", "fps is for frame tars"),
            ("odd width for sbs", [("stereo", "s.mkv", try video("odd.mkv", frames: 3, size: "63x48"))], [("layout", "sbs")],
             422, "invalid_layout", "layout sbs needs an even width, the frames are 63x48"),
            ("odd height for tb", [("stereo", "s.mkv", try video("oddtall.mkv", frames: 3, size: "64x47"))], [("layout", "tb")],
             422, "invalid_layout", "layout tb needs an even height, the frames are 64x47"),
            ("unknown layout", [("stereo", "s.mkv", ten)], [("layout", "lr")], 422, "invalid_parameters", "layout must be sbs or tb, got 'lr'"),
            ("stereo without layout", [("stereo", "s.mkv", ten)], [], 422, "invalid_parameters", "'stereo' needs 'layout' sbs or tb"),
            ("layout with two files", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("layout", "sbs")],
             422, "invalid_parameters", "'layout' goes with 'stereo'"),
            ("a tar and a video", [("left", "l.tar", frameTar(count: 10)), ("right", "r.mkv", ten)], [],
             422, "mixed_inputs", "left and right must both be videos or both be tars of frames"),
            ("max_size too small", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("max_size", "16")],
             422, "invalid_parameters", "max_size must be 32 or more, got 16"),
            ("unknown result kind", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("outputs", "npy,mp3")],
             422, "invalid_parameters", "outputs: unknown result 'mp3'"),
            ("points without calibration", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("outputs", "points")],
             422, "invalid_parameters", "outputs: points needs focal_px and baseline_m"),
            ("cx_px without calibration", [("left", "l.mkv", ten), ("right", "r.mkv", ten)], [("cx_px", "3")],
             422, "invalid_parameters", "cx_px is for points, which need focal_px and baseline_m"),
        ]
        for (label, parts, fields, status, code, says) in cases {
            let response = try submit(parts, fields: fields)
            XCTAssertEqual(response.status, status, "\(label): \(response.text)")
            XCTAssertEqual(response.errorCode, code, label)
            XCTAssertTrue(message(response).contains(says), "\(label): \(message(response))")
            try assertNothingLeft(label)
        }
        // Within the limit once frame_count caps it: queued, frames counted from the container.
        let accepted = try submit([("left", "l.mkv", ten), ("right", "r.mkv", ten)], fields: [("frame_count", "5")])
        XCTAssertEqual(accepted.status, 202, accepted.text)
        XCTAssertEqual((accepted.json["progress"] as? [String: Any])?["frames_total"] as? Int, 5)
    }

    func testAVideoIsStoredInChunksAndItsPreparingStepRunsBeforeItsWindows() throws {
        // Uncompressed, 230400 bytes a frame: several chunks.
        let left = try video("left.avi", frames: 16, size: "320x240"), right = try video("right.avi", frames: 16, size: "320x240")
        XCTAssertGreaterThan(left.count, 2 * JobStore.chunkBytes, "the fixture spans several chunks")
        let response = try submit([("left", "left.avi", left), ("right", "right.avi", right)],
                                  fields: [("kernel_size", "4"), ("frame_step", "3"), ("max_size", "64")])
        XCTAssertEqual(response.status, 202, response.text)
        let id = try XCTUnwrap(UUID(uuidString: try XCTUnwrap(response.json["id"] as? String)))
        XCTAssertEqual((response.json["parameters"] as? [String: Any])?["max_size"] as? Int, 64)
        XCTAssertEqual(try count("job_inputs"), 0, "nothing is decoded while the upload is answered")
        let largest = Int(try TestDatabase.psql(TestDatabase.serverURL,
                                                "SELECT max(octet_length(data)) FROM \(schema).job_uploads")) ?? -1
        XCTAssertEqual(largest, JobStore.chunkBytes, "no stored value over one chunk")
        XCTAssertEqual(try count("job_uploads"), (left.count + JobStore.chunkBytes - 1) / JobStore.chunkBytes
                                                  + (right.count + JobStore.chunkBytes - 1) / JobStore.chunkBytes)

        // The preparing step is claimed first; the windows wait for it.
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        let step = try XCTUnwrap(try queue.claim(workerId: "test", leaseSeconds: 60))
        XCTAssertEqual(step.kind, .prepare)
        XCTAssertEqual(step.framesTotal, 6, "frames 0, 3, 6, 9, 12, 15")
        XCTAssertEqual(step.source, .videos)
        XCTAssertEqual(step.videoRate, "10/3", "10 fps, every third frame")
        XCTAssertEqual(step.parameters.selection, FrameSelection(start: 0, step: 3))
        XCTAssertEqual(step.parameters.maxSize, 64)
        XCTAssertNil(try queue.claim(workerId: "test", leaseSeconds: 60), "no window before the frames are decoded")
        let copied = try queue.copyUploads(of: step, into: videos)
        XCTAssertEqual([UInt8](try Data(contentsOf: try XCTUnwrap(copied["left"]))), left)
        XCTAssertEqual([UInt8](try Data(contentsOf: try XCTUnwrap(copied["right"]))), right)
        let job = try get("/jobs/\(id.lowercased)")
        XCTAssertEqual(job.json["status"] as? String, "running")
        let listed = try XCTUnwrap(job.json["windows"] as? [[String: Any]])
        XCTAssertEqual(listed.count, (job.json["progress"] as? [String: Any])?["windows_total"] as? Int, "the preparing step is not a window")

        for index in 0..<6 {
            XCTAssertTrue(try queue.storeInput(step, InputFrame(index: index, name: String(format: "%04d", index * 3),
                                                                left: Data([1]), right: Data([2]))))
        }
        XCTAssertTrue(try queue.finishPreparing(step))
        XCTAssertEqual(try count("job_uploads"), 0, "the upload goes once decoded")
        let window = try XCTUnwrap(try queue.claim(workerId: "test", leaseSeconds: 60))
        XCTAssertEqual(window.kind, .window)
        XCTAssertEqual(try queue.inputs(of: window).map(\.name), ["0000", "0003", "0006", "0009"], "kernel 4: the first window's frames")
    }

    func testTheSelectionAppliesToTarsToo() throws {
        let response = try submit([("left", "l.tar", frameTar(count: 7)), ("right", "r.tar", frameTar(count: 7, seed: 40))],
                                  fields: [("start_frame", "2"), ("frame_step", "2"), ("frame_count", "2"), ("fps", "12.5")])
        XCTAssertEqual(response.status, 202, response.text)
        let parameters = try XCTUnwrap(response.json["parameters"] as? [String: Any])
        XCTAssertEqual(parameters["fps"] as? Double, 12.5)
        XCTAssertEqual(parameters["input"] as? String, "frames")
        XCTAssertTrue(parameters["layout"] is NSNull)
        XCTAssertEqual(parameters["outputs"] as? [String], ["npy", "disparity", "color", "video", "video_mp4", "color_mp4"])
        let names = try TestDatabase.psql(TestDatabase.serverURL,
                                          "SELECT string_agg(name, ',' ORDER BY frame_index) FROM \(schema).job_inputs")
        XCTAssertEqual(names, "0002,0004")
        XCTAssertEqual(try TestDatabase.psql(TestDatabase.serverURL, "SELECT video_rate FROM \(schema).jobs"), "25/2")
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        XCTAssertEqual(try queue.claim(workerId: "test", leaseSeconds: 60)?.kind, .window, "frames need no preparing step")
    }

    func testTarsOfJPEGFramesAreAcceptedAndABrokenOneIsRefused() throws {
        var frames: [[UInt8]] = []
        for index in 0..<2 {
            let file = videos.appendingPathComponent("\(index).jpg")
            try VideoFixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=48x32:rate=1", "-frames:v", "1", "-ss", "\(index)", file.path])
            frames.append([UInt8](try Data(contentsOf: file)))
        }
        let jpegTar = tar(frames.enumerated().map { (String(format: "%04d.jpg", $0), $1) })
        let accepted = try submit([("left", "l.tar", jpegTar), ("right", "r.tar", jpegTar)])
        XCTAssertEqual(accepted.status, 202, accepted.text)
        let stored = try TestDatabase.psql(TestDatabase.serverURL,
                                           "SELECT encode(left_png, 'base64') FROM \(schema).job_inputs WHERE frame_index = 1")
        XCTAssertEqual(Data(base64Encoded: stored, options: .ignoreUnknownCharacters).map { [UInt8]($0) }, frames[1],
                       "a JPEG frame is stored as uploaded")

        let broken = tar([("0000.jpg", Array(frames[0].prefix(frames[0].count / 2)))])
        let refused = try submit([("left", "l.tar", broken), ("right", "r.tar", broken)])
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertEqual(refused.errorCode, "invalid_jpeg")
        XCTAssertTrue(message(refused).contains("0000.jpg"), message(refused))
        XCTAssertEqual(try count("jobs"), 1, "only the good upload made a job")
    }
}
