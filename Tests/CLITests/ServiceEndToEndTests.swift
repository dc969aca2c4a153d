import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Media
import QueueTestSupport
import TensorKernels
import TestSupport
import XCTest

/// The product as a user meets it: `dynstereo serve` and `dynstereo work` as real processes on a real
/// PostgreSQL, driven over HTTP, with results checked against `dynstereo infer` on the same frames.
final class ServiceEndToEndTests: XCTestCase {
    private var scratch: URL!
    private var schema: String?
    private var processes: [ChildProcess] = []
    private var base = ""
    private var watch: JobWatch!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        for process in processes { process.signal(SIGKILL) }
        processes.removeAll()
        watch = nil
        if let schema { TestDatabase.dropSchema(schema) }
        try? FileManager.default.removeItem(at: scratch)
    }

    private var checkpoint: String { SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path }

    /// Starts a server on a port the kernel picks (read back from its log) and `workers` workers, all on a
    /// schema of their own, and watches that schema's jobs. Returns once every worker has loaded its checkpoint.
    private func startService(workers: Int = 1) throws {
        let database = try TestDatabase.makeSchema("e2e")
        schema = database.schema
        let binary = try BuiltProducts.dynstereo().path
        let migrate = try TestDatabase.run(binary, ["migrate", "--database", database.url])
        XCTAssertEqual(migrate.status, 0, migrate.output)
        watch = try JobWatch(url: database.url, schema: database.schema)

        let server = try ChildProcess(binary, ["serve", "--database", database.url, "--listen", "127.0.0.1:0",
                                               "--upload-dir", scratch.path, "--skip-migrations"],
                                      logPath: scratch.appendingPathComponent("serve.log").path)
        processes.append(server)
        // The log line names the address either side of the message, depending on the log handler.
        let listening = try XCTUnwrap(server.waitForOutput(matching: #"listening.*address=127\.0\.0\.1:(\d+)|address=127\.0\.0\.1:(\d+).*listening"#,
                                                           timeout: JobWatch.hangGuard),
                                      "the server did not start listening: \(server.log)")
        let port = try XCTUnwrap(Int(listening[1].isEmpty ? listening[2] : listening[1]))
        base = "http://127.0.0.1:\(port)"
        XCTAssertEqual(try request("GET", "/healthz").status, 200, server.log)
        for index in 0..<workers {
            let worker = try ChildProcess(binary, ["work", "--database", database.url, "--checkpoint", checkpoint,
                                                   "--worker-id", "w\(index)"],
                                          logPath: scratch.appendingPathComponent("work\(index).log").path)
            processes.append(worker)
            XCTAssertNotNil(worker.waitForOutput(matching: "worker started", timeout: JobWatch.hangGuard), worker.log)
        }
    }

    private struct Response {
        let status: Int
        let body: Data
        let headers: [String: String]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    /// A synchronous HTTP request through URLSession.
    private func request(_ method: String, _ path: String, body: Data? = nil, contentType: String? = nil) throws -> Response {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = 60
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        final class Box: @unchecked Sendable { var result: Result<Response, Error>? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { box.result = .failure(error) } else {
                let http = response as! HTTPURLResponse
                var headers: [String: String] = [:]
                for (key, value) in http.allHeaderFields { headers["\(key)".lowercased()] = "\(value)" }
                box.result = .success(Response(status: http.statusCode, body: data ?? Data(), headers: headers))
            }
            done.signal()
        }.resume()
        done.wait()
        return try box.result!.get()
    }

    /// The golden set's frames of one side as a tar, the way a user uploads them.
    private func tar(_ set: String, _ side: String) throws -> Data {
        let folder = SharedData.goldenSet(set).appendingPathComponent(side)
        let writer = TarWriter()
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            try writer.addFile(path: "\(side)/\(name)", contents: Data(contentsOf: folder.appendingPathComponent(name)))
        }
        try writer.finish()
        return writer.data
    }

    private func submit(left: Data, right: Data, fields: [String: String]) throws -> Response {
        let boundary = "dynstereo-\(UUID().uuidString)"
        var body = Data()
        func part(_ name: String, filename: String?, _ contents: Data) {
            var header = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\""
            if let filename { header += "; filename=\"\(filename)\"\r\nContent-Type: application/x-tar" }
            body.append(Data((header + "\r\n\r\n").utf8))
            body.append(contents)
            body.append(Data("\r\n".utf8))
        }
        part("left", filename: "left.tar", left)
        part("right", filename: "right.tar", right)
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { part(name, filename: nil, Data(value.utf8)) }
        body.append(Data("--\(boundary)--\r\n".utf8))
        return try request("POST", "/jobs", body: body, contentType: "multipart/form-data; boundary=\(boundary)")
    }

    /// The job read over HTTP once its status is one of `wanted`, read again at every change of its row.
    private func waitForStatus(_ id: String, _ wanted: Set<String>, hangGuard: Double = JobWatch.hangGuard) throws -> [String: Any] {
        try watch.wait(hangGuard: hangGuard, reading: { try request("GET", "/jobs/\(id)").json }) { job in
            (job["status"] as? String).map(wanted.contains) ?? false
        }
    }

    func testSubmitPollDownloadMatchesInferThenCancelAndDelete() throws {
        try startService()
        let (left, right) = (try tar("B", "left"), try tar("B", "right"))

        let submitted = try submit(left: left, right: right, fields: ["iters": "6", "focal_px": "500", "baseline_m": "0.1"])
        XCTAssertEqual(submitted.status, 202, String(decoding: submitted.body, as: UTF8.self))
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        XCTAssertEqual(submitted.headers["location"], "/jobs/\(id)")

        let done = try waitForStatus(id, ["succeeded", "failed", "cancelled"], hangGuard: 300)
        XCTAssertEqual(done["status"] as? String, "succeeded", "\(done)")
        let progress = try XCTUnwrap(done["progress"] as? [String: Any])
        XCTAssertEqual(progress["frames_done"] as? Int, 3)
        XCTAssertEqual(progress["frames_total"] as? Int, 3)

        // Every advertised result downloads: disparity.npy, video.mp4 and color.mp4 by URL (the default outputs of
        // a calibrated job), and 3 frames x (disparity, color, depth, video, points) by frames_ready's ranges and
        // templates, {name} being the uploaded frames' names.
        let wholeFiles = try XCTUnwrap((done["urls"] as? [String: Any])?["results"] as? [String])
        XCTAssertEqual(wholeFiles, ["/jobs/\(id)/disparity.npy", "/jobs/\(id)/video.mp4", "/jobs/\(id)/color.mp4"])
        let ready = try XCTUnwrap(done["frames_ready"] as? [String: Any])
        XCTAssertEqual(ready["ranges"] as? [[Int]], [[0, 3]])
        let templates = try XCTUnwrap(ready["url_templates"] as? [String: String])
        XCTAssertEqual(templates.keys.sorted(), ["color", "depth", "disparity", "points", "video"])
        let names = try FileManager.default.contentsOfDirectory(atPath: SharedData.goldenSet("B").appendingPathComponent("left").path)
            .sorted().map { String($0.dropLast(4)) }
        let urls = wholeFiles + templates.values.flatMap { template in names.map { template.replacingOccurrences(of: "{name}", with: $0) } }
        XCTAssertEqual(urls.count, 18, "\(urls)")
        for url in urls {
            let response = try request("GET", url)
            XCTAssertEqual(response.status, 200, url)
            if url.hasSuffix(".png") { XCTAssertNoThrow(try PNG.decode(response.body), url) }
        }
        let tarResponse = try request("GET", "/jobs/\(id)/result.tar")
        XCTAssertEqual(tarResponse.status, 200)

        // The service's disparity is what `dynstereo infer` computes on the same frames.
        let served = try NPY.decode(try request("GET", "/jobs/\(id)/disparity.npy").body)
        let folder = scratch.appendingPathComponent("infer")
        let inferred = try Executable.run(["infer", "--left", SharedData.goldenSet("B").appendingPathComponent("left").path,
                                           "--right", SharedData.goldenSet("B").appendingPathComponent("right").path,
                                           "--checkpoint", checkpoint, "--output", folder.path, "--iters", "6"])
        XCTAssertEqual(inferred.status, 0, inferred.stderr)
        let local = try NPY.read(folder.appendingPathComponent("disparity.npy"))
        XCTAssertEqual(served.shape, [3, 70, 260])
        // Same binary, same weights, same thread count: only OpenBLAS's thread scheduling may reorder sums.
        XCTAssertLessThanOrEqual(served.maxAbsDifference(local).value, 1e-5)
        let depth = try PNG.decode(try request("GET", "/jobs/\(id)/depth/0000.png").body)
        XCTAssertEqual([depth.width, depth.height], [260, 70])

        // A second job, cancelled while queued or running, ends cancelled and serves no results.
        let second = try submit(left: left, right: right, fields: ["iters": "20"])
        let secondID = try XCTUnwrap(second.json["id"] as? String)
        XCTAssertEqual(try request("POST", "/jobs/\(secondID)/cancel").status, 200)
        let cancelled = try waitForStatus(secondID, ["cancelled", "succeeded", "failed"])
        XCTAssertEqual(cancelled["status"] as? String, "cancelled")
        XCTAssertEqual(try request("GET", "/jobs/\(secondID)/disparity.npy").status, 409)

        // Deleting removes the job and everything it stored.
        XCTAssertEqual(try request("DELETE", "/jobs/\(id)").status, 204)
        XCTAssertEqual(try request("GET", "/jobs/\(id)").status, 404)
        XCTAssertEqual(try request("GET", "/jobs/\(id)/disparity.npy").status, 404)

        // Both processes stop cleanly on SIGTERM.
        for process in processes { process.signal(SIGTERM) }
        for process in processes {
            XCTAssertEqual(process.wait(timeout: JobWatch.hangGuard), 0, process.log)
        }
        processes.removeAll()
    }
    /// Issue 13 with the real network: a video of several windows (golden set C, kernel 4) shared by three
    /// worker processes gives exactly `dynstereo infer`'s disparity on the same frames, and the reference's
    /// within the acceptance bound.
    func testThreeWorkersShareAVideosWindowsAndGiveInfersDisparityBitForBit() throws {
        try startService(workers: 3)
        let submitted = try submit(left: try tar("C", "left"), right: try tar("C", "right"),
                                   fields: ["iters": "4", "kernel_size": "4", "outputs": "npy"])
        XCTAssertEqual(submitted.status, 202, String(decoding: submitted.body, as: UTF8.self))
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        let done = try waitForStatus(id, ["succeeded", "failed", "cancelled"], hangGuard: 300)
        XCTAssertEqual(done["status"] as? String, "succeeded", "\(done)")
        let windows = try XCTUnwrap(done["windows"] as? [[String: Any]])
        XCTAssertEqual(windows.map { $0["first_frame"] as? Int }, [0, 2, 4, 6], "the reference's windows of 4 frames, stride 2")
        let ranBy = Set(windows.compactMap { $0["worker"] as? String })
        XCTAssertGreaterThanOrEqual(ranBy.count, 2, "windows spread over the workers: \(windows)")

        let served = try NPY.decode(try request("GET", "/jobs/\(id)/disparity.npy").body)
        let folder = scratch.appendingPathComponent("infer")
        let golden = SharedData.goldenSet("C")
        let inferred = try Executable.run(["infer", "--left", golden.appendingPathComponent("left").path,
                                           "--right", golden.appendingPathComponent("right").path, "--checkpoint", checkpoint,
                                           "--output", folder.path, "--iters", "4", "--kernel-size", "4", "--outputs", "npy"])
        XCTAssertEqual(inferred.status, 0, inferred.stderr)
        let local = try NPY.read(folder.appendingPathComponent("disparity.npy"))
        XCTAssertEqual(served.shape, [9, 64, 256])
        XCTAssertEqual(served.shape, local.shape)
        XCTAssertEqual(served.maxAbsDifference(local).value, 0, "bit-identical to infer")
        let reference = try NPY.read(golden.appendingPathComponent("disparity.npy"))
        XCTAssertLessThanOrEqual(served.maxAbsDifference(reference).value, 2e-3)
    }
}
