// Signed result URLs on a server with API keys, over a real socket and the real PostgreSQL: issued only to
// the key that owns the job, opening only their own path, only until their expiry (on a clock the test
// moves), and never after tampering, for another key, or once their key is revoked.
import APIKeys
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

/// The signer's time, moved by the test.
final class SignerClock: @unchecked Sendable {
    private let lock = NSLock()
    private var time = Date(timeIntervalSince1970: 1_800_000_000)

    var now: Date {
        lock.lock()
        defer { lock.unlock() }
        return time
    }

    func advance(by seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        time += seconds
    }
}

final class SignedURLTests: KeyedServerTestCase {
    private let clock = SignerClock()
    private let secret = URLSigner.generateSecret()

    override func startServer() throws {
        let store = try JobStore(url: databaseURL, defaultKeyLimits: defaultKeyLimits)
        let clock = self.clock
        try serve(JobsHTTPApplication(backend: JobStoreBackend(store: store, loader: MediaFrameLoader()), configuration: apiConfiguration,
                                      authenticator: BearerAuthenticator(verifier: APIKeyVerifier(store: keys)),
                                      signer: URLSigner(secret: secret, now: { clock.now })))
    }

    private func request(_ method: String, _ target: String, key: String? = nil, body: String? = nil) throws -> RawResponse {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        if let key { head += "Authorization: Bearer \(key)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        return try exchange(head + "\r\n" + (body ?? "")).0
    }

    /// A job of `key` whose first frame (`0000`) is stored by a stand-in worker (kernel 2 on 3 frames: the
    /// first window gives frame 0); returns its path.
    private func jobWithAStoredFrame(key: String) throws -> String {
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: 3, width: 5, height: 4))
        form.file("right", filename: "right.tar", frameTar(count: 3, width: 5, height: 4, seed: 3))
        form.field("kernel_size", "2")
        let connection = try client()
        try connection.send(form.request(headers: ["Authorization: Bearer \(key)"]))
        let submitted = try connection.response()
        XCTAssertEqual(submitted.status, 202, submitted.text)
        let id = try XCTUnwrap(submitted.json["id"] as? String)
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        // The claim may hand out an older job's window first: those are stored too, until this job's first.
        for _ in 0..<10 {
            let window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
            guard window.kind == .window else { continue }
            let frames = window.window.resultFrames.map { index -> FrameResult in
                let values = (0..<20).map { Float($0 + index) }
                return FrameResult(frameIndex: index, name: String(format: "%04d", index), height: 4, width: 5,
                                   disparity: values.withUnsafeBytes { Data($0) }, disparityPNG: Data("disparity-\(index)".utf8),
                                   depthPNG: nil, minDisparity: Float(index), maxDisparity: Float(19 + index))
            }
            XCTAssertTrue(try queue.succeed(window, frames: frames))
            if window.jobId.uuidString.lowercased() == id && window.window.resultFrames.contains(0) { break }
        }
        return "/jobs/\(id)"
    }

    private func sign(_ job: String, _ paths: [String], key: String?, expiresIn: Int? = nil) throws -> RawResponse {
        let list = paths.map { "\"\($0)\"" }.joined(separator: ",")
        return try request("POST", "\(job)/signed-urls", key: key,
                           body: "{\"paths\":[\(list)]" + (expiresIn.map { ",\"expires_in\":\($0)" } ?? "") + "}")
    }

    private func signedURL(_ response: RawResponse, _ path: String) throws -> String {
        XCTAssertEqual(response.status, 200, response.text)
        return try XCTUnwrap((response.json["urls"] as? [String: String])?[path], response.text)
    }

    private func keyID(_ name: String) throws -> String {
        try XCTUnwrap(try keys.list().first { $0.name == name }).id.uuidString.lowercased()
    }

    func testASignedURLOpensItsPathWithoutAKeyUntilItExpires() throws {
        let alice = try makeKey("alice")
        let job = try jobWithAStoredFrame(key: alice)
        XCTAssertEqual(try request("GET", "\(job)/disparity/0000.png").status, 401, "without a key or a signature")
        let signed = try sign(job, ["disparity/0000.png", "preview/0000.png"], key: alice, expiresIn: 60)
        let expires = Int(clock.now.timeIntervalSince1970) + 60
        XCTAssertEqual(signed.json["expires"] as? Int, expires)
        XCTAssertEqual(signed.json["expires_at"] as? String, JobView.timestamp(Date(timeIntervalSince1970: Double(expires))))
        let disparity = try signedURL(signed, "disparity/0000.png")
        XCTAssertTrue(disparity.hasPrefix("\(job)/disparity/0000.png?expires=\(expires)&key=\(try keyID("alice"))&signature="), disparity)

        let opened = try request("GET", disparity)
        XCTAssertEqual(opened.status, 200, opened.text)
        XCTAssertEqual(opened.body, Array("disparity-0".utf8))
        XCTAssertEqual(opened.body, try request("GET", "\(job)/disparity/0000.png", key: alice).body)
        let preview = try request("GET", try signedURL(signed, "preview/0000.png") + "&frames=1")
        XCTAssertEqual(preview.status, 200, "parameters beside the signed ones change nothing: \(preview.text)")
        XCTAssertEqual(preview.header("Content-Type"), "image/png")

        clock.advance(by: 59)
        XCTAssertEqual(try request("GET", disparity).status, 200, "one second before its expiry")
        clock.advance(by: 1)
        let expired = try request("GET", disparity)
        XCTAssertEqual(expired.status, 403)
        XCTAssertEqual(expired.errorCode, "url_expired", expired.text)
    }

    func testTamperedForeignAndRevokedSignaturesOpenNothing() throws {
        let alice = try makeKey("alice")
        let bob = try makeKey("bob")
        let job = try jobWithAStoredFrame(key: alice)
        let url = try signedURL(try sign(job, ["disparity/0000.png"], key: alice), "disparity/0000.png")
        XCTAssertEqual(try request("GET", url).status, 200)

        // Another key cannot have the job's URLs signed: the job is not its own.
        XCTAssertEqual(try sign(job, ["disparity/0000.png"], key: bob).status, 404)
        XCTAssertEqual(try sign(job, ["disparity/0000.png"], key: nil).status, 401)

        let query = try XCTUnwrap(URLComponents(string: url)?.queryItems)
        let value = { (name: String) in query.first { $0.name == name }?.value ?? "" }
        let path = String(url.prefix { $0 != "?" })
        let signature = value("signature")
        let flipped = String(signature.dropLast()) + (signature.last == "A" ? "B" : "A")
        let bobID = try keyID("bob")
        let tampered = [
            "another path": path.replacingOccurrences(of: "disparity/0000.png", with: "preview/0000.png") + "?" + url.split(separator: "?")[1],
            "a later expiry": "\(path)?expires=\(Int(value("expires"))! + 3600)&key=\(value("key"))&signature=\(signature)",
            "another key": "\(path)?expires=\(value("expires"))&key=\(bobID)&signature=\(signature)",
            "no key": "\(path)?expires=\(value("expires"))&signature=\(signature)",
            "a changed signature": "\(path)?expires=\(value("expires"))&key=\(value("key"))&signature=\(flipped)",
            "no expiry": "\(path)?key=\(value("key"))&signature=\(signature)",
            "a key that is no id": "\(path)?expires=\(value("expires"))&key=alice&signature=\(signature)",
        ]
        for (what, target) in tampered {
            let response = try request("GET", target)
            XCTAssertEqual(response.status, 403, "\(what): \(response.text)")
            XCTAssertEqual(response.errorCode, "invalid_signature", what)
        }

        // Bob's own URL, moved onto Alice's job, is Bob's signature over another path.
        let bobJob = try jobWithAStoredFrame(key: bob)
        let bobURL = try signedURL(try sign(bobJob, ["disparity/0000.png"], key: bob), "disparity/0000.png")
        XCTAssertEqual(try request("GET", bobURL).status, 200)
        XCTAssertEqual(try request("GET", bobURL.replacingOccurrences(of: bobJob, with: job)).errorCode, "invalid_signature")

        // Job routes that are not results take no signature: they still need the key.
        XCTAssertEqual(try request("GET", "\(job)?" + url.split(separator: "?")[1]).status, 401)

        XCTAssertNotNil(try keys.revoke("alice"))
        let revoked = try request("GET", url)
        XCTAssertEqual(revoked.status, 403)
        XCTAssertEqual(revoked.errorCode, "key_revoked", revoked.text)
        XCTAssertEqual(try request("GET", bobURL).status, 200, "another key's URLs stay")
    }

    func testSigningRequestsAreChecked() throws {
        let alice = try makeKey("alice")
        let job = try jobWithAStoredFrame(key: alice)
        let cases: [(String, Int, String)] = [
            ("{\"paths\":[]}", 422, "invalid_parameters"),
            ("{\"paths\":[\"../../jobs\"]}", 422, "invalid_parameters"),
            ("{\"paths\":[\"/etc/passwd\"]}", 422, "invalid_parameters"),
            ("{\"paths\":[\"a/b/c.png\"]}", 422, "invalid_parameters"),
            ("{\"paths\":[\"video.mp4\"],\"expires_in\":0}", 422, "invalid_parameters"),
            ("{\"paths\":[\"video.mp4\"],\"expires_in\":604801}", 422, "invalid_parameters"),
            ("{\"paths\":\"video.mp4\"}", 400, "bad_request"),
            ("not json", 400, "bad_request"),
        ]
        for (body, status, code) in cases {
            let response = try request("POST", "\(job)/signed-urls", key: alice, body: body)
            XCTAssertEqual(response.status, status, "\(body): \(response.text)")
            XCTAssertEqual(response.errorCode, code, body)
        }
        let many = (0..<1001).map { "preview/\($0).png" }
        XCTAssertEqual(try sign(job, many, key: alice).errorCode, "invalid_parameters")
        XCTAssertEqual(try request("GET", "\(job)/signed-urls", key: alice).status, 405)
    }

    func testAURLSignedWhileTheServerWasOpenOpensNothingOnceItHasKeys() throws {
        let open = try request("POST", "/jobs/\(UUID().uuidString.lowercased())/signed-urls", body: "{\"paths\":[\"result.tar\"]}")
        XCTAssertEqual(open.status, 404, "an open server signs for any existing job only: \(open.text)")
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: 2))
        form.file("right", filename: "right.tar", frameTar(count: 2, seed: 4))
        let connection = try client()
        try connection.send(form.request())
        let job = "/jobs/\(try XCTUnwrap(try connection.response().json["id"] as? String))"
        let url = try signedURL(try sign(job, ["disparity/0000.png"], key: nil), "disparity/0000.png")
        XCTAssertFalse(url.contains("key="), url)
        XCTAssertEqual(try request("GET", url).errorCode, "not_ready", "open: the signature is not even read")
        _ = try makeKey("alice")
        let closed = try request("GET", url)
        XCTAssertEqual(closed.status, 403)
        XCTAssertEqual(closed.errorCode, "invalid_signature", closed.text)
    }

    func testThePageStaysOpenOnAServerWithKeys() throws {
        _ = try makeKey("alice")
        for path in ["/", "/web/app.js", "/web/style.css", "/web/icon.svg"] {
            XCTAssertEqual(try request("GET", path).status, 200, path)
        }
    }
}
