// The service end to end: a real socket, the real PostgreSQL job store in a schema of this test's own, and a
// stand-in worker driving the queue's worker API (the network's worker is wired in by the integration).
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

final class EndToEndTests: StoreServerTestCase {
    override var schemaPrefix: String { "http_" }

    func testSubmitPollDownloadAgainstPostgres() throws {
        var form = MultipartBody()
        let left = frameTar(count: 3, width: 16, height: 12)
        let right = frameTar(count: 3, width: 16, height: 12, seed: 50)
        form.file("left", filename: "left.tar", left)
        form.file("right", filename: "right.tar", right)
        form.field("iters", "3")
        form.field("kernel_size", "2")
        form.field("focal_px", "720")
        form.field("baseline_m", "0.12")
        form.field("outputs", "npy,disparity,color,video,depth")  // the per-frame kinds this test's worker stores
        let connection = try client()
        try connection.send(form.request(headers: ["Idempotency-Key: e2e-1"]))
        let submitted = try connection.response()
        XCTAssertEqual(submitted.status, 202, submitted.text)
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        let base = "/jobs/\(id)"
        XCTAssertEqual(submitted.header("Location"), base)
        XCTAssertEqual((submitted.json["parameters"] as? [String: Any])?["focal_px"] as? Double, 720)
        XCTAssertEqual(try count("job_inputs"), 3)

        // The same submission again is the same job; a different payload under the key is refused.
        try connection.send(form.request(headers: ["Idempotency-Key: e2e-1"]))
        let replay = try connection.response()
        XCTAssertEqual(replay.status, 200)
        XCTAssertEqual(replay.json["id"] as? String, id)
        XCTAssertEqual(try submitJob(headers: ["Idempotency-Key: e2e-1"], on: connection).errorCode, "idempotency_conflict")
        XCTAssertEqual(try count("jobs"), 1)

        // A stand-in worker claims it, reports progress, and stores results.
        let queue = WorkerQueue(url: databaseURL)
        let claimed = try XCTUnwrap(try queue.claim(workerId: "test-worker", leaseSeconds: 30))
        XCTAssertEqual(claimed.jobId.uuidString.lowercased(), id)
        XCTAssertEqual(claimed.window.inputFrames, 0..<2, "kernel 2: windows of two frames")
        XCTAssertEqual(claimed.window.resultFrames, 0..<1, "the first gives frame 0")
        let inputs = try queue.inputs(of: claimed)
        XCTAssertEqual(inputs.map(\.name), ["0000", "0001"], "a window reads only its own frames")
        XCTAssertEqual(inputs.map { [UInt8]($0.left) }, Array(untar(left).map(\.1).prefix(2)))
        XCTAssertEqual(inputs.map { [UInt8]($0.right) }, Array(untar(right).map(\.1).prefix(2)))
        XCTAssertEqual(try queue.heartbeat(claimed, iterationsDone: 1, iterationsTotal: 2, leaseSeconds: 30), .held(cancelRequested: false))
        let running = try get(base)
        XCTAssertEqual(running.json["status"] as? String, "running")
        let progress = try XCTUnwrap(running.json["progress"] as? [String: Any])
        XCTAssertEqual(progress["frames_done"] as? Int, 0)
        XCTAssertEqual(progress["frames_total"] as? Int, 3)
        XCTAssertEqual(progress["windows_done"] as? Int, 0)
        XCTAssertEqual(progress["windows_total"] as? Int, 3, "kernel 2 on 3 frames: windows at 0, 1 and 2")
        XCTAssertEqual(progress["iterations_total"] as? Int, 3 * 5, "iters 3: 1 + 1 + 3 per window")
        XCTAssertEqual(progress["iterations_done"] as? Int, 1, "the running window's reported iteration")
        XCTAssertTrue(progress["eta_seconds"] is NSNull, "no speed measured before a window is stored")
        let windows = try XCTUnwrap(running.json["windows"] as? [[String: Any]])
        XCTAssertEqual(windows.map { $0["first_frame"] as? Int }, [0, 1, 2])
        XCTAssertEqual(windows.map { $0["frames"] as? Int }, [2, 2, 1])
        XCTAssertEqual(windows.map { $0["status"] as? String }, ["running", "queued", "queued"])
        XCTAssertEqual(windows.first?["worker"] as? String, "test-worker", "an open server shows worker ids")
        XCTAssertEqual(try get("\(base)/disparity/0000.png").errorCode, "not_ready")
        XCTAssertNotNil(try get("\(base)/disparity/0000.png").header("Retry-After"))
        XCTAssertEqual(running.json["attempt"] as? Int, 1)
        XCTAssertFalse(running.json["started_at"] is NSNull)
        XCTAssertEqual(try get("\(base)/color/0.png").status, 409)

        // Each frame's disparity is 250 floats of its index; its files are named bytes.
        var results: [(path: String, data: Data)] = []
        let frames = (0..<3).map { frame -> FrameResult in
            let values = [Float](repeating: Float(frame), count: 250)
            return FrameResult(frameIndex: frame, name: String(format: "%04d", frame), height: 10, width: 25,
                               disparity: values.withUnsafeBytes { Data($0) }, disparityPNG: Data("disparity\(frame)".utf8),
                               depthPNG: Data("depth\(frame)".utf8), minDisparity: Float(frame), maxDisparity: Float(frame))
        }
        // The first window stored: its frames are downloadable while the job runs, the others not yet.
        XCTAssertTrue(try queue.succeed(claimed, frames: Array(frames[0..<1])))
        let partial = try get(base)
        XCTAssertEqual(partial.json["status"] as? String, "running")
        let ready = try XCTUnwrap(partial.json["frames_ready"] as? [String: Any])
        XCTAssertEqual(ready["ranges"] as? [[Int]], [[0, 1]])
        XCTAssertEqual(ready["url_templates"] as? [String: String],
                       ["disparity": "\(base)/disparity/{name}.png", "depth": "\(base)/depth/{name}.png"])
        XCTAssertEqual((partial.json["progress"] as? [String: Any])?["frames_done"] as? Int, 1)
        // The list carries the same summary (progress and frames_ready), with `windows` left null.
        let listed = try XCTUnwrap((try get("/jobs").json["jobs"] as? [[String: Any]])?.first)
        XCTAssertEqual(listed["id"] as? String, id)
        // eta_seconds moves with the clock between the two reads; the rest is the same.
        func steady(_ progress: Any?) -> NSDictionary? {
            (progress as? [String: Any]).map { $0.filter { $0.key != "eta_seconds" } as NSDictionary }
        }
        XCTAssertEqual(steady(listed["progress"]), steady(partial.json["progress"]))
        XCTAssertNotNil((listed["progress"] as? [String: Any])?["eta_seconds"] as? Double)
        XCTAssertEqual(listed["frames_ready"] as? NSDictionary, partial.json["frames_ready"] as? NSDictionary)
        XCTAssertTrue(listed["windows"] is NSNull)
        XCTAssertFalse((partial.json["progress"] as? [String: Any])?["eta_seconds"] is NSNull, "one window's speed measured")
        let early = try get("\(base)/disparity/0000.png")
        XCTAssertEqual(early.status, 200)
        XCTAssertEqual(try get("\(base)/depth/0000.png").status, 200)
        XCTAssertEqual(try get("\(base)/disparity/0001.png").errorCode, "not_ready")
        XCTAssertEqual(try get("\(base)/disparity.npy").errorCode, "job_not_succeeded")
        XCTAssertEqual(try get("\(base)/result.tar").errorCode, "job_not_succeeded")
        var window = try XCTUnwrap(try queue.claim(workerId: "test-worker", leaseSeconds: 30))
        while window.kind == .window {
            XCTAssertTrue(try queue.succeed(window, frames: Array(frames[window.window.resultFrames])))
            window = try XCTUnwrap(try queue.claim(workerId: "test-worker", leaseSeconds: 30))
        }
        let step = window
        for frame in 0..<3 {
            XCTAssertTrue(try queue.storeRendered(step, frame: frame, RenderedFrame(colorPNG: Data("color\(frame)".utf8),
                                                                                   videoPNG: Data("video\(frame)".utf8))))
        }
        XCTAssertTrue(try queue.finish(step))
        queue.disconnect()
        var npy = FrameFiles.npyHeader(frames: 3, height: 10, width: 25)
        for frame in frames { npy.append(frame.disparity) }
        results.append(("disparity.npy", npy))
        for kind in ["disparity", "color", "depth", "video"] {
            for frame in 0..<3 { results.append(("\(kind)/\(String(format: "%04d", frame)).png", Data("\(kind)\(frame)".utf8))) }
        }

        let done = try get(base)
        XCTAssertEqual(done.json["status"] as? String, "succeeded")
        XCTAssertEqual(try get("\(base)/disparity/0000.png").body, early.body, "the frame read while running is the frame after success")
        // disparity.npy and result.tar: their lengths up front, and byte ranges of both.
        let npyResponse = try get("\(base)/disparity.npy")
        XCTAssertEqual(npyResponse.header("Content-Length"), "\(npy.count)")
        XCTAssertEqual(npyResponse.header("Accept-Ranges"), "bytes")
        for (header, range) in [("bytes=0-9", 0..<10), ("bytes=100-", 100..<npy.count), ("bytes=-700", (npy.count - 700)..<npy.count),
                                ("bytes=1100-2100", 1100..<2101)] {
            let part = try get("\(base)/disparity.npy", headers: ["Range: \(header)"])
            XCTAssertEqual(part.status, 206, header)
            XCTAssertEqual(Data(part.body), npy.subdata(in: range), header)
            XCTAssertEqual(part.header("Content-Range"), "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(npy.count)")
        }
        let outside = try get("\(base)/disparity.npy", headers: ["Range: bytes=\(npy.count)-"])
        XCTAssertEqual(outside.status, 416)
        XCTAssertEqual(outside.header("Content-Range"), "bytes */\(npy.count)")
        let tar = try get("\(base)/result.tar")
        XCTAssertEqual(tar.header("Content-Length"), "\(tar.body.count)")
        XCTAssertNil(tar.header("Transfer-Encoding"))
        let tarPart = try get("\(base)/result.tar", headers: ["Range: bytes=600-4000"])
        XCTAssertEqual(tarPart.status, 206)
        XCTAssertEqual(tarPart.body, Array(tar.body[600...4000]))
        XCTAssertFalse(done.json["finished_at"] is NSNull)
        // The whole-video file by URL, each frame's files by ranges and templates: every result is reachable.
        let urls = try XCTUnwrap(done.json["urls"] as? [String: Any])
        XCTAssertEqual(urls["results"] as? [String], ["\(base)/disparity.npy"])
        let finished = try XCTUnwrap(done.json["frames_ready"] as? [String: Any])
        XCTAssertEqual(finished["ranges"] as? [[Int]], [[0, 3]])
        let templates = try XCTUnwrap(finished["url_templates"] as? [String: String])
        XCTAssertEqual(templates, Dictionary(uniqueKeysWithValues: ["disparity", "color", "depth", "video"].map { ($0, "\(base)/\($0)/{name}.png") }))
        let advertised = (urls["results"] as? [String] ?? []) + templates.values.flatMap { template in
            (0..<3).map { template.replacingOccurrences(of: "{name}", with: String(format: "%04d", $0)) }
        }
        XCTAssertEqual(advertised.sorted(), results.map(\.path).sorted().map { "\(base)/\($0)" })
        for result in results {
            let response = try get("\(base)/\(result.path)")
            XCTAssertEqual(response.status, 200, result.path)
            XCTAssertEqual(Data(response.body), result.data, result.path)
        }
        let archive = untar(try get("\(base)/result.tar").body)
        XCTAssertEqual(archive.map(\.0), results.map(\.path).sorted())
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: archive.map { ($0.0, Data($0.1)) }),
                       Dictionary(uniqueKeysWithValues: results.map { ($0.path, $0.data) }))
        let metrics = try get("/metrics").text
        XCTAssertTrue(metrics.contains("dynstereo_jobs{status=\"succeeded\"} 1\n"), metrics)
        XCTAssertTrue(metrics.contains("dynstereo_job_duration_seconds_count 1\n"))

        XCTAssertEqual(try send("DELETE", base).status, 204)
        XCTAssertEqual(try get(base).status, 404)
        XCTAssertEqual(try count("job_inputs"), 0)
        XCTAssertEqual(try count("job_frames"), 0)
        XCTAssertEqual(uploadFiles(in: uploads), [])
    }

    func testExpiredResultsKeepTheStatusAndEveryResultRouteIs410() throws {
        let submitted = try submitJob()
        let cancelledJob = try submitJob()
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        let cancelledID = try XCTUnwrap(cancelledJob.json["id"] as? String)
        XCTAssertEqual(submitted.json["results"] as? String, "pending")
        XCTAssertTrue(submitted.json["results_expired_at"] is NSNull)
        let queue = WorkerQueue(url: databaseURL)
        let claimed = try XCTUnwrap(try queue.claim(workerId: "test-worker", leaseSeconds: 30))
        XCTAssertEqual(claimed.jobId.uuidString.lowercased(), id)
        var step = claimed
        var frames: [FrameResult] = []
        while step.kind == .window {
            let stored = step.window.resultFrames.map { frame in
                FrameResult(frameIndex: frame, name: String(format: "%04d", frame), height: 1, width: 1, disparity: Data(count: 4),
                            disparityPNG: Data([1]), depthPNG: Data([2]), minDisparity: 0, maxDisparity: 0)
            }
            XCTAssertTrue(try queue.succeed(step, frames: stored))
            frames += stored
            step = try XCTUnwrap(try queue.claim(workerId: "test-worker", leaseSeconds: 30))
        }
        for frame in frames {
            XCTAssertTrue(try queue.storeRendered(step, frame: frame.frameIndex, RenderedFrame(colorPNG: Data([3]), videoPNG: Data([4]))))
        }
        XCTAssertTrue(try queue.finish(step))
        queue.disconnect()
        let paths = try JobStore(url: databaseURL).resultPaths(id: claimed.jobId)
        XCTAssertEqual(paths.count, 1 + 4 * frames.count)
        XCTAssertEqual(try send("POST", "/jobs/\(cancelledID)/cancel").json["results"] as? String, "none")
        let base = "/jobs/\(id)"
        XCTAssertEqual(try get(base).json["results"] as? String, "available")
        XCTAssertEqual(try get("\(base)/disparity.npy").status, 200)

        // Retention runs on jobs that finished eight days ago.
        try TestDatabase.psql(databaseURL, "UPDATE jobs SET finished_at = now() - interval '8 days'")
        XCTAssertEqual(try WorkerQueue(url: databaseURL).expireResults(olderThan: 7 * 86_400).count, 2)
        XCTAssertEqual(try count("job_inputs"), 0)
        XCTAssertEqual(try count("job_frames"), 0)

        let expired = try get(base)
        XCTAssertEqual(expired.status, 200)
        XCTAssertEqual(expired.json["status"] as? String, "succeeded", "the status stays")
        XCTAssertEqual(expired.json["results"] as? String, "expired")
        XCTAssertNotNil(expired.json["results_expired_at"] as? String)
        let urls = try XCTUnwrap(expired.json["urls"] as? [String: Any])
        XCTAssertTrue(urls["result_tar"] is NSNull)
        XCTAssertTrue(urls["results"] is NSNull)
        for path in ["result.tar"] + paths + ["disparity/9999.png"] {
            let response = try get("\(base)/\(path)")
            XCTAssertEqual(response.status, 410, "\(path): \(response.text)")
            XCTAssertEqual(response.errorCode, "results_expired", path)
            XCTAssertEqual(response.header("Content-Type"), "application/json", path)
        }
        XCTAssertEqual(try get("/jobs/\(cancelledID)").json["results"] as? String, "expired")
        XCTAssertEqual(try get("/jobs/\(cancelledID)/result.tar").status, 410)
        let listed = try get("/jobs?status=succeeded")
        XCTAssertEqual((listed.json["jobs"] as? [[String: Any]])?.first?["results"] as? String, "expired")
    }

    func testCancelQueuedJobAndListing() throws {
        let first = try submitJob()
        let second = try submitJob()
        let firstID = try XCTUnwrap(first.json["id"] as? String)
        let secondID = try XCTUnwrap(second.json["id"] as? String)
        let cancelled = try send("POST", "/jobs/\(firstID)/cancel")
        XCTAssertEqual(cancelled.status, 200)
        XCTAssertEqual(cancelled.json["status"] as? String, "cancelled")
        XCTAssertEqual(try get("/jobs/\(firstID)/result.tar").status, 409)

        let page = try get("/jobs?limit=1")
        XCTAssertEqual((page.json["jobs"] as? [[String: Any]])?.first?["id"] as? String, secondID)
        let cursor = try XCTUnwrap(page.json["next_cursor"] as? String)
        let next = try get("/jobs?limit=1&cursor=\(cursor)")
        XCTAssertEqual((next.json["jobs"] as? [[String: Any]])?.first?["id"] as? String, firstID)
        XCTAssertTrue(next.json["next_cursor"] is NSNull)
        let queued = try get("/jobs?status=queued")
        XCTAssertEqual((queued.json["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, [secondID])
        XCTAssertEqual(try get("/jobs?cursor=garbage").status, 400)
        XCTAssertEqual(try get("/jobs?cursor=").json["jobs"] as? NSArray, try get("/jobs").json["jobs"] as? NSArray, "an empty cursor: the first page")

        XCTAssertEqual(try send("DELETE", "/jobs/\(firstID)").status, 204)
        XCTAssertEqual(try count("jobs"), 1)
        XCTAssertEqual(try count("job_inputs"), 2)
        XCTAssertEqual(try send("DELETE", "/jobs/\(firstID)").status, 404)
    }

    func testBadInputsLeaveNoJobNoFramesNoFiles() throws {
        let one = frameTar(count: 1)
        let requests: [(String, Int, [UInt8])] = {
            var list: [(String, Int, [UInt8])] = []
            var form = MultipartBody()
            form.file("left", filename: "l.tar", frameTar(count: 2))
            form.file("right", filename: "r.tar", one)
            list.append(("count mismatch", 422, form.request()))
            form = MultipartBody()
            form.file("left", filename: "l.tar", one)
            form.file("right", filename: "r.tar", tar([("0000.png", Array("not a png".utf8))]))
            list.append(("not png", 422, form.request()))
            form = MultipartBody()
            form.file("left", filename: "l.tar", one)
            form.file("right", filename: "r.tar", one)
            form.field("kernel_size", "1")
            list.append(("bad kernel", 422, form.request()))
            form = MultipartBody()
            form.file("left", filename: "l.tar", one)
            // A form whose closing delimiter never comes, inside a complete HTTP body.
            let unterminated = form.bytes
            list.append(("truncated multipart", 400, Array("POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Type: \(form.contentType)\r\nContent-Length: \(unterminated.count)\r\n\r\n".utf8) + unterminated))
            list.append(("no host", 400, Array("POST /jobs HTTP/1.1\r\nContent-Length: 1\r\n\r\nx".utf8)))
            list.append(("both framings", 400, Array("POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".utf8)))
            return list
        }()
        for (name, status, bytes) in requests {
            let connection = try client()
            try connection.send(bytes)
            let response = try connection.response()
            XCTAssertEqual(response.status, status, "\(name): \(response.text)")
            XCTAssertNotNil(response.errorCode, name)
        }
        XCTAssertEqual(try count("jobs"), 0)
        XCTAssertEqual(try count("job_inputs"), 0)
        XCTAssertEqual(uploadFiles(in: uploads), [])
        XCTAssertEqual(try get("/readyz").status, 200)
    }
}
