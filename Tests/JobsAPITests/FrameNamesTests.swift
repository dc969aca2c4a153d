// frames_ready.names against the real PostgreSQL store: a tar whose members have names of their own lists them,
// so that a client can address every ready frame while the job runs; a tar named by source index lists none.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import Media
import TestSupport
import XCTest
@testable import JobsAPI

final class FrameNamesTests: StoreServerTestCase {
    override var schemaPrefix: String { "names_" }

    private func get(_ path: String) throws -> RawResponse {
        try exchange("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").0
    }

    /// Submits a tar pair whose members are `files` (left and right alike, different pixels).
    private func submit(_ files: [String], fields: [(String, String)] = []) throws -> (id: String, response: RawResponse) {
        var form = MultipartBody()
        form.file("left", filename: "left.tar", tar(files.enumerated().map { ($1, tinyPNG(width: 8, height: 6, seed: UInt8($0))) }))
        form.file("right", filename: "right.tar", tar(files.enumerated().map { ($1, tinyPNG(width: 8, height: 6, seed: UInt8(50 + $0))) }))
        form.field("iters", "2")
        form.field("kernel_size", "2")
        form.field("outputs", "npy,disparity")
        for (name, value) in fields { form.field(name, value) }
        let connection = try client()
        try connection.send(form.request())
        let response = try connection.response()
        XCTAssertEqual(response.status, 202, response.text)
        return (try XCTUnwrap(response.json["id"] as? String), response)
    }

    private func framesReady(_ response: RawResponse) throws -> [String: Any] {
        try XCTUnwrap(response.json["frames_ready"] as? [String: Any], response.text)
    }

    /// Runs the next claimable window as the worker does (its result files named by its inputs' names), and
    /// returns the frames it stored; nil once the next step is the finishing one.
    private func storeNextWindow(_ queue: WorkerQueue) throws -> Range<Int>? {
        let claimed = try XCTUnwrap(try queue.claim(workerId: "names-worker", leaseSeconds: 30))
        guard claimed.kind == .window else { return nil }
        let inputs = try queue.inputs(of: claimed)
        let results = try claimed.window.resultFrames.map { frame -> FrameResult in
            let input = try XCTUnwrap(inputs.first { $0.index == frame })
            return FrameResult(frameIndex: frame, name: try FrameRendering.resultName(input.name), height: 1, width: 2,
                               disparity: [Float(frame), 1].withUnsafeBytes { Data($0) }, disparityPNG: Data("disparity \(frame)".utf8),
                               depthPNG: nil, minDisparity: Float(frame), maxDisparity: 1)
        }
        XCTAssertTrue(try queue.succeed(claimed, frames: results))
        return claimed.window.resultFrames
    }

    func testATarsOwnNamesAreListedAndEachReadyFramesURLResolvesWhileTheJobRuns() throws {
        // Sorted by name, as the tars' frames are: img_07, img_17, left-000123, then z9.
        let (id, submitted) = try submit(["left-000123.png", "img_17.png", "z9.png", "img_07.png"])
        let base = "/jobs/\(id)"
        let names = ["img_07", "img_17", "left-000123", "z9"]
        XCTAssertEqual(try framesReady(submitted)["names"] as? [String], names, "the submission's answer has them already")
        let queued = try framesReady(try get(base))
        XCTAssertEqual(queued["names"] as? [String], names, "every frame's name, none ready yet")
        XCTAssertEqual(queued["ranges"] as? [[Int]], [])
        // A page of the list says the job has names of its own without listing them.
        let listed = try XCTUnwrap((try get("/jobs").json["jobs"] as? [[String: Any]])?.first)
        XCTAssertTrue((listed["frames_ready"] as? [String: Any])?["names"] is NSNull, "\(listed)")

        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        var stored: [Int] = []
        while let frames = try storeNextWindow(queue) {
            stored += Array(frames)
            let running = try get(base)
            XCTAssertEqual(running.json["status"] as? String, "running")
            let ready = try framesReady(running)
            XCTAssertEqual(ready["names"] as? [String], names)
            let ranges = try XCTUnwrap(ready["ranges"] as? [[Int]])
            XCTAssertEqual(ranges, [[0, stored.count]])
            let template = try XCTUnwrap((ready["url_templates"] as? [String: String])?["disparity"])
            XCTAssertEqual(template, "\(base)/disparity/{name}.png")
            // Every ready frame by its listed name; the next one is not ready yet.
            for frame in ranges.flatMap({ $0[0]..<$0[1] }) {
                let file = try get(template.replacingOccurrences(of: "{name}", with: names[frame]))
                XCTAssertEqual(file.status, 200, "frame \(frame) '\(names[frame])': \(file.text)")
                XCTAssertEqual(file.text, "disparity \(frame)")
            }
            if stored.count < names.count {
                XCTAssertEqual(try get(template.replacingOccurrences(of: "{name}", with: names[stored.count])).errorCode, "not_ready")
                XCTAssertEqual(try get(template.replacingOccurrences(of: "{name}", with: "img_99")).status, 404,
                               "a name the tar does not have")
            }
        }
        XCTAssertEqual(stored, [0, 1, 2, 3])
    }

    func testATarNamedBySourceIndexListsNoNames() throws {
        // Frames 1, 3 and 5 of seven, named 0001, 0003 and 0005: the names the selection gives.
        let (id, submitted) = try submit((0..<7).map { String(format: "%04d.png", $0) },
                                         fields: [("start_frame", "1"), ("frame_step", "2"), ("frame_count", "3")])
        let base = "/jobs/\(id)"
        XCTAssertFalse(try framesReady(submitted).keys.contains("names"))
        let listed = try XCTUnwrap((try get("/jobs").json["jobs"] as? [[String: Any]])?.first)
        XCTAssertEqual((listed["frames_ready"] as? [String: Any]).map { $0.keys.sorted() }, ["ranges", "url_templates"])
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        XCTAssertEqual(try storeNextWindow(queue), 0..<1)
        let ready = try framesReady(try get(base))
        XCTAssertEqual(ready.keys.sorted(), ["ranges", "url_templates"], "no names: they are the default ones")
        XCTAssertEqual(ready["ranges"] as? [[Int]], [[0, 1]])
        // So frame 0's name is start_frame + 0 × frame_step, 4 digits.
        XCTAssertEqual(try get("\(base)/disparity/0001.png").text, "disparity 0")
        XCTAssertEqual(try get("\(base)/disparity/0003.png").errorCode, "not_ready")
        // Names no selected frame has are never stored: 404 at once, not a wait. Between the steps, past the
        // count, before the start, and an index not written in four digits.
        for name in ["0002", "0007", "0000", "3"] {
            let answer = try get("\(base)/disparity/\(name).png")
            XCTAssertEqual(answer.status, 404, "\(name): \(answer.text)")
            XCTAssertEqual(answer.errorCode, "not_found", name)
        }
        XCTAssertEqual(try get("\(base)/preview/0002.png").status, 404)
    }

    /// The queue's copy of the rule that names result files (JobQueue does not link Media) is Media's.
    func testTheQueuesResultNameIsTheWorkers() throws {
        for name in ["0007.png", "img_17.PNG", "left-000123", "a.png.png", "frame.jpg", "x.Png"] {
            XCTAssertEqual(FrameNames.resultName(name), try FrameRendering.resultName(name), name)
        }
    }
    /// A tar member's name may hold characters a URL escapes: the frame's URL, its name percent-encoded,
    /// resolves; a malformed escape is a 400.
    func testANameThatNeedsEscapingResolvesPercentEncoded() throws {
        let (id, _) = try submit(["frame #1 (50%).png", "frame #2 (50%).png"])
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        while try storeNextWindow(queue) != nil {}
        XCTAssertEqual(try framesReady(try get("/jobs/\(id)"))["names"] as? [String], ["frame #1 (50%)", "frame #2 (50%)"])
        let first = try get("/jobs/\(id)/disparity/frame%20%231%20%2850%25%29.png")
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(first.text, "disparity 0")
        XCTAssertEqual(try get("/jobs/\(id)/disparity/frame%20%232%20(50%25).png").text, "disparity 1", "parentheses left as they are")
        XCTAssertEqual(try get("/jobs/\(id)/disparity/frame%ZZ.png").status, 400)
    }
}
