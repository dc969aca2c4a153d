// API keys over a real socket against the real PostgreSQL: open mode, 401/403, and isolation between keys.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

final class APIKeyAuthTests: KeyedServerTestCase {
    private func request(_ method: String, _ path: String, key: String?) throws -> RawResponse {
        let authorization = key.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        return try exchange("\(method) \(path) HTTP/1.1\r\nHost: t\r\n\(authorization)Connection: close\r\n\r\n").0
    }

    private func submit(key: String?, idempotencyKey: String? = nil) throws -> RawResponse {
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: 2, width: 16, height: 12))
        form.file("right", filename: "right.tar", frameTar(count: 2, width: 16, height: 12, seed: 50))
        let connection = try client()
        let headers = (key.map { ["Authorization: Bearer \($0)"] } ?? []) + (idempotencyKey.map { ["Idempotency-Key: \($0)"] } ?? [])
        try connection.send(form.request(headers: headers))
        return try connection.response()
    }

    private func listedIDs(key: String?) throws -> [String] {
        let listed = try request("GET", "/jobs", key: key)
        XCTAssertEqual(listed.status, 200, listed.text)
        return (listed.json["jobs"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    func testWithoutKeysTheServerIsOpen() throws {
        let submitted = try submit(key: nil)
        XCTAssertEqual(submitted.status, 202, submitted.text)
        XCTAssertEqual(try listedIDs(key: nil).count, 1)
        XCTAssertEqual(try listedIDs(key: "dsk_anything").count, 1, "a header is ignored while no key exists")
    }

    func testMissingUnknownAndMalformedKeysAre401AndProbesStayOpen() throws {
        _ = try makeKey("alice")
        for key in [nil, "dsk_unknown"] as [String?] {
            let response = try request("GET", "/jobs", key: key)
            XCTAssertEqual(response.status, 401, "\(key ?? "no key"): \(response.text)")
            XCTAssertEqual(response.header("WWW-Authenticate"), "Bearer")
            XCTAssertEqual((response.json["error"] as? [String: Any])?["code"] as? String, "unauthorized")
        }
        let basic = try exchange("GET /jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Basic YTpi\r\nConnection: close\r\n\r\n").0
        XCTAssertEqual(basic.status, 401, basic.text)
        XCTAssertEqual(try submit(key: nil).status, 401, "an upload without a key is refused")
        XCTAssertEqual(Int(try TestDatabase.psql(databaseURL, "SELECT count(*) FROM jobs")), 0)
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.yaml"] {
            XCTAssertEqual(try request("GET", path, key: nil).status, 200, path)
        }
    }

    func testAKeySeesAndTouchesOnlyItsOwnJobs() throws {
        let alice = try makeKey("alice")
        let bob = try makeKey("bob")
        let submitted = try submit(key: alice, idempotencyKey: "same")
        XCTAssertEqual(submitted.status, 202, submitted.text)
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        XCTAssertEqual(try submit(key: alice, idempotencyKey: "same").status, 200, "alice's own retry replays")
        let bobs = try submit(key: bob, idempotencyKey: "same")
        XCTAssertEqual(bobs.status, 202, "idempotency keys are per API key: bob's 'same' is a job of his own")
        XCTAssertNotEqual(bobs.json["id"] as? String, id, "bob cannot replay alice's key into her job")
        XCTAssertEqual(try request("DELETE", "/jobs/\(try XCTUnwrap(bobs.json["id"] as? String))", key: bob).status, 204)
        XCTAssertEqual(try request("GET", "/jobs/\(id)", key: alice).status, 200)
        XCTAssertEqual(try listedIDs(key: alice), [id])
        XCTAssertEqual(try listedIDs(key: bob), [], "bob's list has none of alice's jobs")
        for (method, path) in [("GET", "/jobs/\(id)"), ("POST", "/jobs/\(id)/cancel"), ("GET", "/jobs/\(id)/result.tar"),
                               ("GET", "/jobs/\(id)/disparity.npy"), ("DELETE", "/jobs/\(id)")] {
            XCTAssertEqual(try request(method, path, key: bob).status, 404, "bob: \(method) \(path)")
        }
        XCTAssertEqual(try request("GET", "/jobs/\(id)", key: alice).json["status"] as? String, "queued",
                       "bob's cancel and delete did nothing")
        XCTAssertEqual(try request("DELETE", "/jobs/\(id)", key: alice).status, 204)
    }

    func testARevokedKeyIs403() throws {
        let alice = try makeKey("alice")
        XCTAssertEqual(try request("GET", "/jobs", key: alice).status, 200)
        _ = try keys.revoke("alice")
        let response = try request("GET", "/jobs", key: alice)
        XCTAssertEqual(response.status, 403, response.text)
        XCTAssertEqual((response.json["error"] as? [String: Any])?["code"] as? String, "key_revoked")
        XCTAssertEqual(try submit(key: alice).status, 403)
    }

    /// Worker ids name the operator's machines: a keyed client sees its windows, not who runs them.
    func testAKeyedClientSeesItsWindowsWithoutWorkerIds() throws {
        let alice = try makeKey("alice")
        let submitted = try submit(key: alice)
        XCTAssertEqual(submitted.status, 202, submitted.text)
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        _ = try XCTUnwrap(try WorkerQueue(url: databaseURL).claim(workerId: "machine-7/0", leaseSeconds: 30))
        let job = try request("GET", "/jobs/\(id)", key: alice)
        let windows = try XCTUnwrap(job.json["windows"] as? [[String: Any]])
        XCTAssertEqual(windows.first?["status"] as? String, "running")
        XCTAssertTrue(windows.allSatisfy { $0["worker"] is NSNull }, "\(windows)")
        XCTAssertEqual(try TestDatabase.psql(databaseURL, "SELECT worker_id FROM job_windows WHERE status = 'running'"), "machine-7/0")
    }
}
