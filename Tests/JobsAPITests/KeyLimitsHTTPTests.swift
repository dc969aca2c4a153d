// Per-key limits over a real socket against the real PostgreSQL: 429 with Retry-After and a JSON error,
// refusal before the body is read (Content-Length) and while it streams (chunked), the daily counter,
// and no limits on an open server.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

final class KeyLimitsHTTPTests: KeyedServerTestCase {
    /// The server's defaults for keys without their own values.
    private let defaults = KeyLimits(maxQueuedJobs: 2, maxUploadBytesPerDay: 40_000)

    override func setUpWithError() throws {
        defaultKeyLimits = defaults
        try super.setUpWithError()
    }

    /// A two-frame upload; `seed` makes each one's bytes differ.
    private func form(seed: UInt8 = 0) -> MultipartBody {
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: 2, width: 16, height: 12, seed: seed))
        form.file("right", filename: "right.tar", frameTar(count: 2, width: 16, height: 12, seed: seed &+ 50))
        return form
    }

    /// Body bytes of every submission sent so far (boundaries are random, so sizes vary a little).
    private var sentBodyBytes: [Int] = []

    private func submit(key: String?, seed: UInt8 = 0) throws -> RawResponse {
        let connection = try client()
        let upload = form(seed: seed)
        sentBodyBytes.append(upload.finished().count)
        try connection.send(upload.request(headers: key.map { ["Authorization: Bearer \($0)"] } ?? []))
        return try connection.response()
    }

    private func count(_ sql: String) throws -> Int { Int(try TestDatabase.psql(databaseURL, sql)) ?? -1 }

    private func assertTooManyRequests(_ response: RawResponse, code: String, retryAfter: ClosedRange<Int>,
                                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, 429, response.text, file: file, line: line)
        XCTAssertEqual(response.errorCode, code, response.text, file: file, line: line)
        XCTAssertEqual(response.header("Content-Type"), "application/json", file: file, line: line)
        let seconds = response.header("Retry-After").flatMap { Int($0) }
        XCTAssertNotNil(seconds, "Retry-After is whole seconds: \(response.header("Retry-After") ?? "missing")", file: file, line: line)
        if let seconds { XCTAssertTrue(retryAfter.contains(seconds), "Retry-After \(seconds) not in \(retryAfter)", file: file, line: line) }
    }

    func testQueuedJobsPastTheLimitAre429WithRetryAfterAndTheKeysOwnLimitWins() throws {
        let plain = try makeKey("plain")
        let roomy = try makeKey("roomy", maxQueuedJobs: 3)
        for seed in 0..<2 { XCTAssertEqual(try submit(key: plain, seed: UInt8(seed)).status, 202) }
        assertTooManyRequests(try submit(key: plain, seed: 9), code: "too_many_queued_jobs", retryAfter: 30...30)
        for seed in 0..<3 { XCTAssertEqual(try submit(key: roomy, seed: UInt8(seed)).status, 202, "roomy's own limit is 3") }
        assertTooManyRequests(try submit(key: roomy, seed: 9), code: "too_many_queued_jobs", retryAfter: 30...30)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 5)

        // Once one of plain's jobs has finished, it may queue another.
        try TestDatabase.psql(databaseURL, """
            UPDATE jobs SET status = 'cancelled', finished_at = now()
            WHERE id = (SELECT j.id FROM jobs j JOIN api_keys k ON k.id = j.api_key_id WHERE k.name = 'plain' LIMIT 1)
            """)
        XCTAssertEqual(try submit(key: plain, seed: 10).status, 202)
    }

    func testSimultaneousUploadsByOneKeyDoNotSlipPastTheLimit() throws {
        let key = try makeKey("racer")
        // Built and connected first so the uploads start together: those that pass the early check while
        // no job is queued yet are held to the limit only by the enqueue transaction's lock on the key.
        let requests = (0..<6).map { form(seed: UInt8($0)).request(headers: ["Authorization: Bearer \(key)"]) }
        let connections = try requests.map { _ in try client() }
        let statuses = LockedStatuses()
        DispatchQueue.concurrentPerform(iterations: requests.count) { index in
            do {
                try connections[index].send(requests[index])
                statuses.append(try connections[index].response())
            } catch {
                statuses.append(nil)
            }
        }
        let all = statuses.values
        XCTAssertEqual(all.filter { $0?.status == 202 }.count, 2, "\(all.map { $0?.status ?? -1 })")
        XCTAssertEqual(all.filter { $0?.status == 429 && $0?.errorCode == "too_many_queued_jobs" }.count, 4,
                       "\(all.map { $0?.text ?? "no response" })")
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 2)
    }

    func testDailyUploadBytesAreCountedAndAContentLengthPastThemIsRefusedBeforeTheBody() throws {
        let uploader = try makeKey("uploader", maxQueuedJobs: 100)
        let upload = form()
        let request = upload.request(headers: ["Authorization: Bearer \(uploader)"])
        let bodySize = upload.finished().count
        // Uploads of about bodySize while they fit in the default allowance (40 000 bytes).
        while (sentBodyBytes.reduce(0, +) + bodySize + 100) <= defaults.maxUploadBytesPerDay! {
            XCTAssertEqual(try submit(key: uploader, seed: UInt8(sentBodyBytes.count)).status, 202)
        }
        let fitting = sentBodyBytes.count
        XCTAssertGreaterThanOrEqual(fitting, 2, "fixture too large for the allowance")
        let counted = sentBodyBytes.reduce(0, +)
        XCTAssertEqual(try count("SELECT bytes FROM api_key_uploads"), counted, "each job's request body size is counted")
        XCTAssertGreaterThan(counted + bodySize, defaults.maxUploadBytesPerDay!, "the next upload no longer fits")

        // Only the head: the server answers without waiting for a single body byte, then closes.
        let connection = try client()
        let head = request[..<request.firstRange(of: Array("\r\n\r\n".utf8))!.upperBound]
        try connection.send(Array(head))
        let refused = try connection.response()
        let midnight = JobsHTTPApplication.secondsUntilUTCMidnight()
        assertTooManyRequests(refused, code: "daily_upload_limit", retryAfter: max(1, midnight - 5)...midnight)
        XCTAssertTrue(connection.isClosedByServer(), "the unread body cannot be taken for a next request")
        XCTAssertTrue(refused.text.contains("40000"), refused.text)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), fitting)
        XCTAssertEqual(try count("SELECT bytes FROM api_key_uploads"), counted, "a refused upload is not counted")
    }

    func testAChunkedUploadIsRefusedOnceItPassesTheAllowance() throws {
        let bodySize = form().finished().count
        let tight = try makeKey("tight", maxUploadBytesPerDay: bodySize / 2)
        let body = form().finished()
        let connection = try client()
        try connection.send("POST /jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(tight)\r\n"
                            + "Content-Type: \(form().contentType)\r\nTransfer-Encoding: chunked\r\n\r\n")
        // No size announced: 1 KiB chunks up to a little past the allowance, then silence. The server must
        // answer while the body is still incomplete.
        var stream: [UInt8] = []
        var offset = 0
        while offset <= bodySize / 2 + 1024 {
            let piece = Array(body[offset..<min(offset + 1024, body.count)])
            stream += Array(String(piece.count, radix: 16).utf8) + [13, 10] + piece + [13, 10]
            offset += piece.count
        }
        XCTAssertLessThan(offset, body.count, "the body must be larger than what was sent")
        try connection.send(stream)
        let refused = try connection.response()
        assertTooManyRequests(refused, code: "daily_upload_limit", retryAfter: 1...86_400)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 0)
        XCTAssertEqual(uploadFiles(in: uploads), [], "the partial upload's temp files are gone")
    }

    func testAnOpenServerAppliesNoPerKeyLimits() throws {
        for seed in 0..<4 { XCTAssertEqual(try submit(key: nil, seed: UInt8(seed)).status, 202, "the default limit of 2 does not apply") }
        XCTAssertEqual(try count("SELECT count(*) FROM api_key_uploads"), 0)
    }

    func testIdempotencyKeysAreScopedPerAPIKeyAndAClashNamesOnlyTheAskersJob() throws {
        let alice = try makeKey("alice")
        let bob = try makeKey("bob")
        func send(_ key: String, seed: UInt8) throws -> RawResponse {
            let connection = try client()
            try connection.send(form(seed: seed).request(headers: ["Authorization: Bearer \(key)", "Idempotency-Key: same"]))
            return try connection.response()
        }
        let hers = try send(alice, seed: 1)
        let his = try send(bob, seed: 2)
        XCTAssertEqual(hers.status, 202, hers.text)
        XCTAssertEqual(his.status, 202, "bob's key is his own even if alice used the same: \(his.text)")
        let herID = try XCTUnwrap(hers.json["id"] as? String)
        let hisID = try XCTUnwrap(his.json["id"] as? String)
        XCTAssertNotEqual(herID, hisID)
        let clash = try send(bob, seed: 3)
        XCTAssertEqual(clash.status, 422)
        XCTAssertEqual(clash.errorCode, "idempotency_conflict")
        XCTAssertTrue(clash.text.contains(hisID) && !clash.text.contains(herID), clash.text)
    }
}

/// Responses collected from several threads.
final class LockedStatuses: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [RawResponse?] = []
    func append(_ response: RawResponse?) { lock.withLock { storage.append(response) } }
    var values: [RawResponse?] { lock.withLock { storage } }
}

/// The daily upload limit's Retry-After: whole seconds up to the next midnight UTC, never 0.
final class RetryAfterTests: XCTestCase {
    func testSecondsUntilUTCMidnight() {
        let day = 86_400.0
        let midnight = 20_000 * day  // 2024-10-04T00:00:00Z
        XCTAssertEqual(JobsHTTPApplication.secondsUntilUTCMidnight(now: Date(timeIntervalSince1970: midnight)), 86_400)
        XCTAssertEqual(JobsHTTPApplication.secondsUntilUTCMidnight(now: Date(timeIntervalSince1970: midnight + 3_600)), 82_800)
        XCTAssertEqual(JobsHTTPApplication.secondsUntilUTCMidnight(now: Date(timeIntervalSince1970: midnight + day - 0.25)), 1)
        XCTAssertEqual(JobsHTTPApplication.secondsUntilUTCMidnight(now: Date(timeIntervalSince1970: midnight + day - 90.5)), 91)
    }
}
