// The job routes against the in-memory backend over a real socket: submission and validation, the job
// resource, listing, cancel, delete, results, metrics, and the error statuses.
import Foundation
import HTTPTestSupport
import HTTPTransport
@testable import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

final class JobRoutesTests: ServerTestCase {
    private func jobID(_ response: RawResponse) throws -> UUID {
        try XCTUnwrap(UUID(uuidString: try XCTUnwrap(response.json["id"] as? String)))
    }

    func testSubmitAnswers202WithTheJobAndLocation() throws {
        let response = try submitJob(frames: 3)
        XCTAssertEqual(response.status, 202)
        let id = try jobID(response)
        XCTAssertEqual(response.header("Location"), "/jobs/\(id.uuidString.lowercased())")
        let job = response.json
        XCTAssertEqual(job["status"] as? String, "queued")
        let progress = try XCTUnwrap(job["progress"] as? [String: Any])
        XCTAssertEqual(progress["frames_done"] as? Int, 0)
        XCTAssertEqual(progress["frames_total"] as? Int, 3)
        for key in ["windows_done", "windows_total", "iterations_done", "iterations_total", "eta_seconds"] {
            XCTAssertTrue(progress[key] is NSNull, "\(key): a backend without windows knows none")
        }
        XCTAssertEqual((job["parameters"] as? [String: Any])?["iters"] as? Int, 4)
        XCTAssertEqual((job["parameters"] as? [String: Any])?["kernel_size"] as? Int, apiConfiguration.defaultKernelSize)
        XCTAssertTrue(job["error"] is NSNull)
        XCTAssertTrue(job["started_at"] is NSNull)
        XCTAssertNotNil(job["created_at"] as? String)
        XCTAssertEqual(job["attempt"] as? Int, 0)
        let fetched = try get("/jobs/\(id.uuidString.lowercased())")
        XCTAssertEqual(fetched.status, 200)
        XCTAssertEqual(fetched.json["id"] as? String, id.uuidString.lowercased())
    }

    func testIdempotencyKeyReplaysAndConflicts() throws {
        let first = try submitJob(headers: ["Idempotency-Key: abc"])
        XCTAssertEqual(first.status, 202)
        let again = try submitJob(headers: ["Idempotency-Key: abc"])
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(try jobID(again), try jobID(first))
        let different = try submitJob(frames: 3, headers: ["Idempotency-Key: abc"])
        XCTAssertEqual(different.status, 422)
        XCTAssertEqual(different.errorCode, "idempotency_conflict")
        XCTAssertEqual(backend.jobs.count, 1)
    }

    func testBadSubmissionsGetTheirStatusAndQueueNothing() throws {
        func submit(_ build: (inout MultipartBody) -> Void, headers: [String] = []) throws -> RawResponse {
            var form = MultipartBody()
            build(&form)
            let connection = try client()
            try connection.send(form.request(headers: headers))
            return try connection.response()
        }
        let oneLeft = frameTar(count: 1)
        let cases: [(String, Int, String, (inout MultipartBody) -> Void)] = [
            ("right missing", 422, "missing_frames", { $0.file("left", filename: "l.tar", oneLeft) }),
            ("counts differ", 422, "frame_count_mismatch", {
                $0.file("left", filename: "l.tar", frameTar(count: 2)); $0.file("right", filename: "r.tar", oneLeft) }),
            ("sizes differ", 422, "frame_size_mismatch", {
                $0.file("left", filename: "l.tar", oneLeft); $0.file("right", filename: "r.tar", frameTar(count: 1, width: 9)) }),
            ("not a png", 422, "invalid_png", {
                $0.file("left", filename: "l.tar", tar([("0.png", Array("hello".utf8))])); $0.file("right", filename: "r.tar", oneLeft) }),
            ("undecodable png", 422, "invalid_png", {
                $0.file("left", filename: "l.tar", tar([("0000.png", Array(tinyPNG(width: 8, height: 6, seed: 1).dropLast(30)))]))
                $0.file("right", filename: "r.tar", oneLeft) }),
            ("not a tar", 422, "invalid_tar", {
                $0.file("left", filename: "l.tar", Array(repeating: 7, count: 1000)); $0.file("right", filename: "r.tar", oneLeft) }),
            ("empty tar", 422, "missing_frames", {
                $0.file("left", filename: "l.tar", tar([])); $0.file("right", filename: "r.tar", tar([])) }),
            ("bad iters", 422, "invalid_parameters", {
                $0.file("left", filename: "l.tar", oneLeft); $0.file("right", filename: "r.tar", oneLeft); $0.field("iters", "0") }),
            ("focal without baseline", 422, "invalid_parameters", {
                $0.file("left", filename: "l.tar", oneLeft); $0.file("right", filename: "r.tar", oneLeft); $0.field("focal_px", "700") }),
            ("unknown part", 422, "unknown_field", { $0.field("colour", "red") }),
            ("duplicate part", 422, "duplicate_field", { $0.field("iters", "3"); $0.field("iters", "4") }),
            ("oversized field", 422, "field_too_large", { $0.field("iters", String(repeating: "1", count: 300)) }),
            ("too many frames", 413, "too_many_frames", {
                $0.file("left", filename: "l.tar", frameTar(count: 4)); $0.file("right", filename: "r.tar", frameTar(count: 4)) }),
            ("too many pixels", 413, "frame_too_large", {
                $0.file("left", filename: "l.tar", frameTar(count: 1, width: 300, height: 300))
                $0.file("right", filename: "r.tar", frameTar(count: 1, width: 300, height: 300)) }),
        ]
        server.shutdown()
        server.wait()
        apiConfiguration.frameLimits.maxFrames = 3
        apiConfiguration.frameLimits.maxPixelsPerFrame = 200 * 200
        try startServer()
        for (name, status, code, build) in cases {
            let response = try submit(build)
            XCTAssertEqual(response.status, status, name)
            XCTAssertEqual(response.errorCode, code, "\(name): \(response.text)")
        }
        let bad = try exchange("POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").0
        XCTAssertEqual(bad.status, 415)
        let noBoundary = try exchange("POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data\r\nContent-Length: 2\r\n\r\nxx").0
        XCTAssertEqual(noBoundary.errorCode, "bad_multipart")
        XCTAssertEqual(backend.jobs.count, 0)
        XCTAssertEqual(uploadFiles(in: uploads), [])
    }

    func testUploadOverTheBodyLimitIs413() throws {
        server.shutdown()
        server.wait()
        apiConfiguration.maxUploadBytes = 1000
        try startServer()
        let response = try submitJob(frames: 5)
        XCTAssertEqual(response.status, 413)
        XCTAssertEqual(response.errorCode, "body_too_large")
        XCTAssertEqual(backend.jobs.count, 0)
    }

    func testListIsNewestFirstWithCursorAndStatusFilter() throws {
        var ids: [UUID] = []
        for _ in 0..<5 { ids.append(try jobID(try submitJob())) }
        _ = try send("POST", "/jobs/\(ids[1].uuidString.lowercased())/cancel")
        let first = try get("/jobs?limit=2")
        XCTAssertEqual(first.status, 200)
        let firstIDs = (first.json["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        XCTAssertEqual(firstIDs, [ids[4], ids[3]].map { $0.uuidString.lowercased() })
        let cursor = try XCTUnwrap(first.json["next_cursor"] as? String)
        let second = try get("/jobs?limit=2&cursor=\(cursor)")
        XCTAssertEqual((second.json["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String },
                       [ids[2], ids[1]].map { $0.uuidString.lowercased() })
        let cancelled = try get("/jobs?status=cancelled")
        XCTAssertEqual((cancelled.json["jobs"] as? [[String: Any]])?.count, 1)
        XCTAssertTrue(cancelled.json["next_cursor"] is NSNull)
        XCTAssertEqual(try get("/jobs?status=bogus").status, 400)
        XCTAssertEqual(try get("/jobs?limit=0").status, 400)
        XCTAssertEqual(try get("/jobs?cursor=nonsense").status, 400)
        // An empty cursor is no cursor (the contract's cursor is any string; empty means the first page).
        let empty = try get("/jobs?limit=2&cursor=")
        XCTAssertEqual(empty.status, 200, empty.text)
        XCTAssertEqual((empty.json["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, firstIDs)
        XCTAssertEqual(empty.json["next_cursor"] as? String, cursor)
    }

    func testCancelAndDelete() throws {
        let id = try jobID(try submitJob()).uuidString.lowercased()
        let cancelled = try send("POST", "/jobs/\(id)/cancel")
        XCTAssertEqual(cancelled.json["status"] as? String, "cancelled")
        XCTAssertEqual(try send("DELETE", "/jobs/\(id)").status, 204)
        XCTAssertEqual(try get("/jobs/\(id)").status, 404)
        XCTAssertEqual(try send("DELETE", "/jobs/\(id)").status, 404)
        XCTAssertEqual(try send("POST", "/jobs/\(id)/cancel").status, 404)
        XCTAssertEqual(try get("/jobs/not-a-uuid").status, 404)
    }

    func testResultsOnlyOnceSucceededAndTarHasEverything() throws {
        let id = try jobID(try submitJob())
        let base = "/jobs/\(id.uuidString.lowercased())"
        let early = try get("\(base)/disparity/0.png")
        XCTAssertEqual(early.status, 409)
        XCTAssertEqual(early.errorCode, "job_not_succeeded")
        XCTAssertTrue(early.text.contains("queued"))
        XCTAssertEqual(try get("\(base)/result.tar").status, 409)

        let files: [String: Data] = ["disparity.npy": Data([1, 2, 3]), "disparity/0.png": Data([4]), "color/0.png": Data([5, 6]),
                                     "video/0.png": Data(repeating: 9, count: 5000), "depth/0.png": Data([7])]
        backend.results[id] = files
        backend.update(id) { $0.status = .succeeded; $0.startedAt = Date(); $0.finishedAt = Date().addingTimeInterval(2); $0.framesDone = 2 }
        let job = try get(base).json
        let urls = try XCTUnwrap(job["urls"] as? [String: Any])
        XCTAssertEqual(urls["results"] as? [String], files.keys.sorted().map { "\(base)/\($0)" })
        XCTAssertEqual(urls["result_tar"] as? String, "\(base)/result.tar")
        // The list gives the same URLs as the job's own JSON, and a null `windows` (the summary is in progress).
        let listed = try XCTUnwrap((try get("/jobs").json["jobs"] as? [[String: Any]])?.first { $0["id"] as? String == id.uuidString.lowercased() })
        XCTAssertEqual((listed["urls"] as? [String: Any])?["results"] as? [String], files.keys.sorted().map { "\(base)/\($0)" })
        XCTAssertEqual((listed["urls"] as? [String: Any])?["result_tar"] as? String, "\(base)/result.tar")
        XCTAssertTrue(listed["windows"] is NSNull)
        for (path, data) in files {
            let response = try get("\(base)/\(path)")
            XCTAssertEqual(response.status, 200, path)
            XCTAssertEqual(Data(response.body), data, path)
        }
        XCTAssertEqual(try get("\(base)/disparity/7.png").status, 404)
        let tarResponse = try get("\(base)/result.tar")
        XCTAssertEqual(tarResponse.header("Transfer-Encoding"), "chunked")
        let entries = untar(tarResponse.body)
        XCTAssertEqual(entries.map(\.0), files.keys.sorted())
        for (name, bytes) in entries { XCTAssertEqual(Data(bytes), files[name], name) }
    }

    /// A status poll of a long video reads the job (with its windows) once and nothing per frame or file; its
    /// JSON grows with the windows only: ready frames as ranges and templates, the whole-video file by URL.
    func testThePollOfALongVideoIsOneReadAndItsJSONHasNoURLPerFile() throws {
        func poll(frames: Int) throws -> (calls: [String], json: [String: Any], bytes: Int) {
            let id = try jobID(try submitJob())
            let plan = JobWindow.plan(frames: frames, kernelSize: 20)
            backend.update(id) { job in
                job.status = .succeeded
                job.framesTotal = frames
                job.framesDone = frames
                job.windows = plan.map { JobWindow(index: $0.index, kind: $0.kind, inputFrames: $0.inputFrames, resultFrames: $0.resultFrames,
                                                  status: .succeeded, attempt: 1, workerId: "w/0", iterationsDone: 10,
                                                  iterationsTotal: 10, error: nil) }
            }
            backend.results[id] = Dictionary(uniqueKeysWithValues: (0..<frames).map { ("disparity/\(String(format: "%04d", $0)).png", Data([1])) })
            _ = backend.takeCalls()
            let response = try get("/jobs/\(id.uuidString.lowercased())")
            XCTAssertEqual(response.status, 200)
            return (backend.takeCalls(), response.json, response.body.count)
        }
        let long = try poll(frames: 1000)
        XCTAssertEqual(long.calls, ["job(id:owner:)"], "one read, nothing per frame or file")
        let ready = try XCTUnwrap(long.json["frames_ready"] as? [String: Any])
        XCTAssertEqual(ready["ranges"] as? [[Int]], [[0, 1000]])
        let id = try XCTUnwrap(long.json["id"] as? String)
        XCTAssertEqual((ready["url_templates"] as? [String: String])?["color"], "/jobs/\(id)/color/{name}.png")
        // The whole-video files, known from the parameters: disparity.npy and the MP4s of the default outputs.
        XCTAssertEqual((long.json["urls"] as? [String: Any])?["results"] as? [String],
                       ["/jobs/\(id)/disparity.npy", "/jobs/\(id)/video.mp4", "/jobs/\(id)/color.mp4"])
        XCTAssertEqual((long.json["windows"] as? [Any])?.count, JobWindow.plan(frames: 1000, kernelSize: 20).count - 1)
        // Ten times the frames: only the windows' part grows (about 100 bytes a window), no URL per file.
        let short = try poll(frames: 100)
        let windowsAdded = JobWindow.plan(frames: 1000, kernelSize: 20).count - JobWindow.plan(frames: 100, kernelSize: 20).count
        XCTAssertLessThan(long.bytes - short.bytes, 120 * windowsAdded, "\(short.bytes) -> \(long.bytes) bytes")
    }

    func testMetricsCountJobsAndRequests() throws {
        let id = try jobID(try submitJob(frames: 4))
        backend.update(id) { $0.status = .succeeded; $0.startedAt = Date(); $0.finishedAt = $0.startedAt!.addingTimeInterval(2) }
        _ = try submitJob()
        _ = try get("/nowhere")
        let text = try get("/metrics").text
        XCTAssertTrue(text.contains("dynstereo_jobs{status=\"queued\"} 1\n"), text)
        XCTAssertTrue(text.contains("dynstereo_jobs{status=\"succeeded\"} 1\n"))
        XCTAssertTrue(text.contains("dynstereo_jobs_finished_total 1\n"))
        XCTAssertTrue(text.contains("dynstereo_job_duration_seconds_bucket{le=\"1\"} 0\n"))
        XCTAssertTrue(text.contains("dynstereo_job_duration_seconds_bucket{le=\"5\"} 1\n"))
        let fps = text.split(separator: "\n").first { $0.hasPrefix("dynstereo_frames_per_second ") }
        XCTAssertEqual(Double(fps?.split(separator: " ").last ?? "") ?? 0, 2, accuracy: 1e-6, "4 frames in 2 s")
        XCTAssertTrue(text.contains("dynstereo_http_requests_total{route=\"POST /jobs\",code=\"202\"} 2\n"))
        XCTAssertTrue(text.contains("dynstereo_http_requests_total{route=\"unmatched\",code=\"404\"} 1\n"))
    }

    func testHealthReadinessAndStorageOutage() throws {
        XCTAssertEqual(try get("/healthz").status, 200)
        XCTAssertEqual(try get("/readyz").status, 200)
        backend.available = false
        let ready = try get("/readyz")
        XCTAssertEqual(ready.status, 503)
        XCTAssertEqual(ready.errorCode, "not_ready")
        let jobs = try get("/jobs")
        XCTAssertEqual(jobs.status, 503)
        XCTAssertEqual(jobs.errorCode, "storage_unavailable")
        // The database's address stays in the server's log.
        for response in [ready, jobs] {
            XCTAssertFalse(response.text.contains("10.9.8.7") || response.text.contains("6543"), response.text)
        }
        XCTAssertEqual(try get("/healthz").status, 200)
    }

    func testOpenAPIIsServedAndMatchesTheFile() throws {
        let file = try String(contentsOf: SharedData.projectRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        XCTAssertEqual(OpenAPIDocument.yaml, file, "the text the EmbedOpenAPI plugin embedded must be openapi.yaml")
        let response = try get("/openapi.yaml")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, file)
        XCTAssertTrue(file.hasPrefix("openapi: 3.1.0\n"))
        // Every route the router knows is documented.
        for path in ["/jobs:", "/jobs/{id}:", "/jobs/{id}/cancel:", "/jobs/{id}/result.tar:", "/jobs/{id}/disparity.npy:",
                     "/jobs/{id}/{kind}/{file}:", "/healthz:", "/readyz:", "/metrics:", "/openapi.yaml:"] {
            XCTAssertTrue(file.contains("\n  \(path)\n"), path)
        }
    }
}
