// The service end to end: a real socket, the real PostgreSQL job store in a schema of this test's own, and a
// stand-in worker driving the queue's worker API (the network's worker is wired in by the integration).
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

final class EndToEndTests: ServerTestCase {
    private var databaseURL = ""
    private var schema = ""

    override func setUpWithError() throws {
        (databaseURL, schema) = try TestDatabase.makeSchema("http_" + name.filter(\.isLetter).suffix(24))
        try Migrator(url: databaseURL).run()
        try super.setUpWithError()
    }

    override func startServer() throws {
        let backend = JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader())
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration))
    }

    override func tearDown() {
        super.tearDown()
        TestDatabase.dropSchema(schema)
    }

    private func count(_ table: String) throws -> Int {
        Int(try TestDatabase.psql(TestDatabase.serverURL, "SELECT count(*) FROM \(schema).\(table)")) ?? -1
    }

    private func get(_ path: String) throws -> RawResponse {
        try exchange("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").0
    }

    private func send(_ method: String, _ path: String) throws -> RawResponse {
        try exchange("\(method) \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").0
    }

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
        XCTAssertEqual(claimed.id.uuidString.lowercased(), id)
        let inputs = try queue.inputs(of: claimed)
        XCTAssertEqual(inputs.map(\.name), ["0000", "0001", "0002"])
        XCTAssertEqual(inputs.map { [UInt8]($0.left) }, untar(left).map(\.1))
        XCTAssertEqual(inputs.map { [UInt8]($0.right) }, untar(right).map(\.1))
        XCTAssertEqual(try queue.heartbeat(claimed, framesDone: 1, leaseSeconds: 30), .held(cancelRequested: false))
        let running = try get(base)
        XCTAssertEqual(running.json["status"] as? String, "running")
        XCTAssertEqual(running.json["progress"] as? [String: Int], ["frames_done": 1, "frames_total": 3])
        XCTAssertEqual(running.json["attempt"] as? Int, 1)
        XCTAssertFalse(running.json["started_at"] is NSNull)
        XCTAssertEqual(try get("\(base)/color/0.png").status, 409)

        var results = [ResultBlob(path: "disparity.npy", data: Data(repeating: 1, count: 3000))]
        for kind in ["disparity", "color", "depth", "video"] {
            for frame in 0..<3 { results.append(ResultBlob(path: "\(kind)/\(frame).png", data: Data("\(kind)\(frame)".utf8))) }
        }
        XCTAssertTrue(try queue.succeed(claimed, results: results))
        queue.disconnect()

        let done = try get(base)
        XCTAssertEqual(done.json["status"] as? String, "succeeded")
        XCTAssertFalse(done.json["finished_at"] is NSNull)
        let urls = try XCTUnwrap(done.json["urls"] as? [String: Any])
        XCTAssertEqual(urls["results"] as? [String], results.map(\.path).sorted().map { "\(base)/\($0)" })
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
        XCTAssertEqual(try count("job_results"), 0)
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
        XCTAssertEqual(claimed.id.uuidString.lowercased(), id)
        let paths = ["disparity.npy", "disparity/0000.png", "color/0000.png", "depth/0000.png", "video/0000.png"]
        XCTAssertTrue(try queue.succeed(claimed, results: paths.map { ResultBlob(path: $0, data: Data($0.utf8)) }))
        queue.disconnect()
        XCTAssertEqual(try send("POST", "/jobs/\(cancelledID)/cancel").json["results"] as? String, "none")
        let base = "/jobs/\(id)"
        XCTAssertEqual(try get(base).json["results"] as? String, "available")
        XCTAssertEqual(try get("\(base)/disparity.npy").status, 200)

        // Retention runs on jobs that finished eight days ago.
        try TestDatabase.psql(databaseURL, "UPDATE jobs SET finished_at = now() - interval '8 days'")
        XCTAssertEqual(try WorkerQueue(url: databaseURL).expireResults(olderThan: 7 * 86_400).count, 2)
        XCTAssertEqual(try count("job_inputs"), 0)
        XCTAssertEqual(try count("job_results"), 0)

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
