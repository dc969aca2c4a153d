// Video in, video out through the service: uploads over a real socket, the real job store, and a worker
// running the network (the golden weight formula) on frames cut from golden set A.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import JobsAPI
import Logging
import Media
import QueueTestSupport
import TestSupport
import VideoIO
import XCTest
@testable import Worker

final class VideoJobTests: XCTestCase {
    private var url = ""
    private var schema = ""
    private var store: JobStore!
    private var watch: JobWatch!
    private var server: HTTPServer<JobsHTTPApplication>!
    private var worker: WorkerHandle?
    private var scratch: URL!
    private var uploads: URL!

    static let processor: EstimatorProcessor = {
        try! EstimatorProcessor(checkpoint: SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth"))
    }()

    override func setUpWithError() throws {
        (url, schema) = try TestDatabase.makeSchema("video_" + name.filter(\.isLetter).suffix(20))
        try Migrator(url: url, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })).run()
        store = try JobStore(url: url)
        watch = try JobWatch(url: url, schema: schema)
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("video-jobs-\(UUID().uuidString)")
        uploads = scratch.appendingPathComponent("uploads")
        try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true)
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        var api = JobsAPIConfiguration()
        api.uploadDirectory = uploads
        server = HTTPServer(configuration: configuration,
                            application: JobsHTTPApplication(backend: JobStoreBackend(store: store, loader: MediaFrameLoader()),
                                                             configuration: api))
        try server.start()
        var logger = Logger(label: "video-worker")
        logger.logLevel = .critical
        let worker = try QueueWorker(url: url, processors: [Self.processor],
                                     configuration: WorkerConfiguration(workerId: "video-test", leaseSeconds: 600, heartbeatInterval: 1,
                                                                        backoff: RetryBackoff(base: 0, cap: 0), resultRetention: nil),
                                     logger: logger)
        self.worker = WorkerHandle(worker)
    }

    override func tearDown() {
        if let worker {
            worker.worker.stop()
            XCTAssertTrue(worker.join(), "the worker stops")
        }
        server?.shutdown()
        server?.wait()
        try? FileManager.default.removeItem(at: scratch)
        TestDatabase.dropSchema(schema)
    }

    // MARK: Fixtures

    /// Six frames cut from golden set A (height 32, width 64; its five frames, then the first again), as
    /// PNG files `0000.png`... in `scratch/left` and `scratch/right`.
    private func writeFrames() throws -> (left: URL, right: URL) {
        let folders = (scratch.appendingPathComponent("left"), scratch.appendingPathComponent("right"))
        for (side, folder) in [("left", folders.0), ("right", folders.1)] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for index in 0..<6 {
                try goldenCrop(side, frame: index, height: 32, width: 64)
                    .write(to: folder.appendingPathComponent(String(format: "%04d.png", index)))
            }
        }
        return folders
    }

    private func tar(of folder: URL) throws -> [UInt8] {
        let writer = TarWriter()
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            try writer.addFile(path: name, contents: try Data(contentsOf: folder.appendingPathComponent(name)))
        }
        try writer.finish()
        return [UInt8](writer.data)
    }

    private func submit(_ build: (inout MultipartBody) throws -> Void) throws -> RawResponse {
        var form = MultipartBody()
        try build(&form)
        let connection = try RawClient(port: server.port)
        try connection.send(form.request())
        return try connection.response()
    }

    private func get(_ path: String, headers: [String] = []) throws -> RawResponse {
        let connection = try RawClient(port: server.port)
        try connection.send("GET \(path) HTTP/1.1\r\nHost: t\r\n" + headers.map { $0 + "\r\n" }.joined() + "Connection: close\r\n\r\n")
        return try connection.response()
    }

    /// Waits for the job to finish, and fails the test unless it succeeded.
    private func succeeded(_ response: RawResponse, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        XCTAssertEqual(response.status, 202, response.text, file: file, line: line)
        let id = try XCTUnwrap(response.json["id"] as? String, file: file, line: line)
        let job = try watch.wait(for: try XCTUnwrap(UUID(uuidString: id)), store) { $0.status.isTerminal }
        XCTAssertEqual(job.status, .succeeded, "\(job.error.map { "\($0.code): \($0.message)" } ?? "")", file: file, line: line)
        return id
    }

    private func floats(_ npy: [UInt8]) -> [Float] {
        let header = Int(npy[8]) | Int(npy[9]) << 8
        return Data(npy.dropFirst(10 + header)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    private func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) against \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    // MARK: Tests

    func testVideosGiveTheTarsDisparityAndTheMP4sHaveTheJobsFrames() throws {
        let (leftFolder, rightFolder) = try writeFrames()
        let leftVideo = scratch.appendingPathComponent("left.mkv"), rightVideo = scratch.appendingPathComponent("right.mkv")
        try VideoFixtures.losslessVideo(of: leftFolder, to: leftVideo, rate: 30)
        try VideoFixtures.losslessVideo(of: rightFolder, to: rightVideo, rate: 30)
        let packed = scratch.appendingPathComponent("sbs.mkv")
        try VideoFixtures.ffmpeg(["-framerate", "30", "-i", leftFolder.appendingPathComponent("%04d.png").path,
                                  "-framerate", "30", "-i", rightFolder.appendingPathComponent("%04d.png").path,
                                  "-filter_complex", "hstack", "-c:v", "ffv1", "-pix_fmt", "bgr0", packed.path])
        // Frames 1 and 3 of six: start 1, every second, at most two.
        func fields(_ form: inout MultipartBody) {
            for (name, value) in [("iters", "2"), ("kernel_size", "4"), ("start_frame", "1"), ("frame_step", "2"), ("frame_count", "2"),
                                  ("outputs", "npy,disparity,color,video_mp4,color_mp4")] { form.field(name, value) }
        }
        let fromTars = try succeeded(try submit { form in
            form.file("left", filename: "left.tar", try tar(of: leftFolder))
            form.file("right", filename: "right.tar", try tar(of: rightFolder))
            fields(&form)
        })
        let videoResponse = try submit { form in
            form.file("left", filename: "left.mkv", [UInt8](try Data(contentsOf: leftVideo)))
            form.file("right", filename: "right.mkv", [UInt8](try Data(contentsOf: rightVideo)))
            fields(&form)
        }
        let parameters = try XCTUnwrap(videoResponse.json["parameters"] as? [String: Any])
        XCTAssertEqual(parameters["start_frame"] as? Int, 1)
        XCTAssertEqual(parameters["frame_step"] as? Int, 2)
        XCTAssertEqual(parameters["frame_count"] as? Int, 2)
        XCTAssertTrue(parameters["max_size"] is NSNull)
        XCTAssertEqual(parameters["outputs"] as? [String], ["npy", "disparity", "color", "video_mp4", "color_mp4"])
        XCTAssertEqual(parameters["input"] as? String, "videos")
        XCTAssertEqual((videoResponse.json["progress"] as? [String: Any])?["frames_total"] as? Int, 2, "counted from the container")
        let fromVideos = try succeeded(videoResponse)
        let fromPacked = try succeeded(try submit { form in
            form.file("stereo", filename: "sbs.mkv", [UInt8](try Data(contentsOf: packed)))
            form.field("layout", "sbs")
            fields(&form)
        })

        // The selection keeps exactly source frames 1 and 3, named by their index in the source.
        for id in [fromTars, fromVideos, fromPacked] {
            XCTAssertEqual(try store.resultPaths(id: try XCTUnwrap(UUID(uuidString: id))),
                           ["color.mp4", "color/0001.png", "color/0003.png", "disparity.npy", "disparity/0001.png", "disparity/0003.png", "video.mp4"],
                           "only the kinds asked for")
        }
        let preparedNames = try TestDatabase.psql(TestDatabase.serverURL,
            "SELECT string_agg(name, ',' ORDER BY frame_index) FROM \(schema).job_inputs WHERE job_id = '\(fromVideos)'")
        XCTAssertEqual(preparedNames, "0001,0003")
        for (position, source) in [(0, 1), (1, 3)] {
            for (side, folder) in [("left", leftFolder), ("right", rightFolder)] {
                let expected = try PNG.decodeRGB(try Data(contentsOf: folder.appendingPathComponent(String(format: "%04d.png", source))))
                for id in [fromVideos, fromPacked] {
                    let stored = try TestDatabase.psql(TestDatabase.serverURL,
                        "SELECT encode(\(side)_png, 'base64') FROM \(schema).job_inputs WHERE job_id = '\(id)' AND frame_index = \(position)")
                    let png = try XCTUnwrap(Data(base64Encoded: stored, options: .ignoreUnknownCharacters))
                    XCTAssertEqual(try PNG.decodeRGB(png).pixels, expected.pixels, "\(side) of job frame \(position) is source frame \(source)")
                }
            }
        }
        XCTAssertEqual(try count("job_uploads"), 0, "the preparing step deleted the uploads once decoded")

        // A lossless video decodes to the PNGs' pixels, so the network sees the same frames.
        let reference = floats(try get("/jobs/\(fromTars)/disparity.npy").body)
        XCTAssertEqual(reference.count, 2 * 32 * 64)
        let videos = floats(try get("/jobs/\(fromVideos)/disparity.npy").body)
        let sbs = floats(try get("/jobs/\(fromPacked)/disparity.npy").body)
        XCTAssertLessThanOrEqual(maxDifference(reference, videos), 1e-5, "two video files against the PNG tars")
        XCTAssertLessThanOrEqual(maxDifference(reference, sbs), 1e-5, "one side-by-side file against the two files")

        // The MP4s have the job's frames at its size (video.mp4: left beside colour), at 30 / frame_step fps.
        let mp4 = try get("/jobs/\(fromVideos)/video.mp4")
        XCTAssertEqual(mp4.status, 200)
        XCTAssertEqual(mp4.header("Content-Type"), "video/mp4")
        XCTAssertEqual(mp4.header("Accept-Ranges"), "bytes")
        for (name, body, width) in [("video.mp4", mp4.body, 128), ("color.mp4", try get("/jobs/\(fromVideos)/color.mp4").body, 64)] {
            let file = scratch.appendingPathComponent(name)
            try Data(body).write(to: file)
            let probed = try VideoFixtures.probe(file.path)
            XCTAssertEqual(probed.codec, "h264", name)
            XCTAssertEqual(probed.pixelFormat, "yuv420p", name)
            XCTAssertEqual(probed.frames, 2, name)
            XCTAssertEqual(probed.width, width, name)
            XCTAssertEqual(probed.height, 32, name)
            XCTAssertEqual(probed.rate, "15/1", name)
        }
        // Browsers seek with ranges: 206 and exactly those bytes.
        let partial = try get("/jobs/\(fromVideos)/video.mp4", headers: ["Range: bytes=100-1099"])
        XCTAssertEqual(partial.status, 206)
        XCTAssertEqual(partial.header("Content-Range"), "bytes 100-1099/\(mp4.body.count)")
        XCTAssertEqual(partial.body, Array(mp4.body[100..<1100]))
        let tail = try get("/jobs/\(fromVideos)/video.mp4", headers: ["Range: bytes=-10"])
        XCTAssertEqual(tail.status, 206)
        XCTAssertEqual(tail.body, Array(mp4.body.suffix(10)))
        // result.tar holds what was rendered, the MP4s included, byte for byte.
        let archive = try TarReader(data: Data(try get("/jobs/\(fromVideos)/result.tar").body))
        var members: [String: Data] = [:]
        while let entry = try archive.next() { members[entry.path] = try archive.readContents() }
        XCTAssertEqual(members.keys.sorted(), ["color.mp4", "color/0001.png", "color/0003.png", "disparity.npy",
                                               "disparity/0001.png", "disparity/0003.png", "video.mp4"])
        XCTAssertEqual(members["video.mp4"].map { [UInt8]($0) }, mp4.body)
    }

    func testACalibratedJobStoresItsPointCloudsAndNothingItWasNotAskedFor() throws {
        let (leftFolder, rightFolder) = try writeFrames()
        let id = try succeeded(try submit { form in
            form.file("left", filename: "left.tar", try tar(of: leftFolder))
            form.file("right", filename: "right.tar", try tar(of: rightFolder))
            for (name, value) in [("iters", "2"), ("kernel_size", "2"), ("frame_count", "1"), ("focal_px", "100"), ("baseline_m", "0.5"),
                                  ("cx_px", "30"), ("max_depth_m", "40"), ("outputs", "points,npy")] { form.field(name, value) }
        })
        let job = try get("/jobs/\(id)")
        XCTAssertEqual(try store.resultPaths(id: try XCTUnwrap(UUID(uuidString: id))), ["disparity.npy", "points/0000.ply"])
        let parameters = try XCTUnwrap(job.json["parameters"] as? [String: Any])
        XCTAssertEqual(parameters["cx_px"] as? Double, 30)
        XCTAssertTrue(parameters["cy_px"] is NSNull)
        XCTAssertEqual(parameters["max_depth_m"] as? Double, 40)
        XCTAssertEqual(try get("/jobs/\(id)/disparity/0000.png").status, 404, "disparity PNGs were not asked for")

        // The stored cloud is the one the CLI's writer makes from the same disparity and left frame.
        let disparity = floats(try get("/jobs/\(id)/disparity.npy").body)
        let left = try PNG.decodeRGB(try Data(contentsOf: leftFolder.appendingPathComponent("0000.png")))
        let expected = PointCloud.ply(disparity: disparity[...], left: left,
                                      camera: StereoCamera(focalPx: 100, baselineM: 0.5, cxPx: 30, maxDepthM: 40))
        let ply = try get("/jobs/\(id)/points/0000.ply")
        XCTAssertEqual(ply.status, 200)
        XCTAssertEqual(ply.header("Content-Type"), "application/x-ply")
        XCTAssertEqual(ply.body, [UInt8](expected))
        let kept = disparity.filter { $0 > 0 && 100 * 0.5 / Double($0) <= 40 }.count
        XCTAssertTrue(ply.text.contains("element vertex \(kept)\n"), "one vertex per pixel with depth within 40 m")
    }

    private func count(_ table: String) throws -> Int {
        Int(try TestDatabase.psql(TestDatabase.serverURL, "SELECT count(*) FROM \(schema).\(table)")) ?? -1
    }
}
