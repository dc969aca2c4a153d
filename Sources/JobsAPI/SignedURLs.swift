// Signed, expiring result URLs: what lets a browser's `<video src>`, `<img src>` or download link, which
// cannot send an Authorization header, fetch a keyed client's results. Like S3's presigned URLs, a URL
// carries its expiry, the key it was issued to and an HMAC of both and its path under a server secret; the
// server checks all three when it is used, and the key must still be in force (a revoked key's URLs end).
import APIKeys
import Foundation
import HTTPTransport

/// Makes and checks signed URLs under one secret. The signed text is
/// `GET <path>\n<expires>\n<key id, or "-" on an open server>`, its MAC an HMAC-SHA256 in base64url without
/// padding, and the URL `<path>?expires=<unix seconds>&key=<key id>&signature=<MAC>` (`key` left out when
/// issued on an open server). Other query parameters are not signed and change nothing the routes serve.
public struct URLSigner: Sendable {
    private let secret: [UInt8]
    /// The server's time: the tests move it to pass an expiry without waiting for one.
    private let now: @Sendable () -> Date
    /// The longest lifetime a client may ask for: a week, as S3 allows.
    static let maxLifetimeSeconds = 7 * 24 * 3600
    static let defaultLifetimeSeconds = 3600

    public init(secret: [UInt8], now: @escaping @Sendable () -> Date = { Date() }) {
        precondition(secret.count >= 32, "a URL-signing secret has at least 256 bits")
        self.secret = secret
        self.now = now
    }

    /// A signer whose secret lives only in this process (for servers without a database of their own to
    /// keep one in, such as the route tests): its URLs end when the process does.
    public static func ephemeral() -> URLSigner {
        var generator = SystemRandomNumberGenerator()
        return URLSigner(secret: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// A fresh 256-bit secret from the system's random source (getrandom(2) on Linux), for storing.
    public static func generateSecret() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    var currentTime: Date { now() }

    func signature(path: String, expires: Int, key: UUID?) -> String {
        let text = "GET \(path)\n\(expires)\n\(key?.lowercased ?? "-")"
        return Self.base64URL(HMACSHA256.mac(key: secret, message: Array(text.utf8)))
    }

    /// `path` (decoded, as the router reads it) percent-encoded, with its expiry, key and signature as the query.
    /// The MAC covers the decoded path, so a client's own escaping of the same path does not matter.
    func sign(path: String, expires: Int, key: UUID?) -> String {
        var query = "expires=\(expires)"
        if let key { query += "&key=\(key.lowercased)" }
        let encoded = path.addingPercentEncoding(withAllowedCharacters: Self.pathCharacters) ?? path
        return "\(encoded)?\(query)&signature=\(signature(path: path, expires: expires, key: key))"
    }

    /// What a path may hold unescaped: RFC 3986's unreserved characters and the segment separator.
    private static let pathCharacters = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")

    /// The key a signed request was issued to (nil: issued on an open server), once its signature and expiry
    /// hold. Throws 403 `invalid_signature` for a signature that does not match the path, expiry and key (a
    /// tampered or foreign URL), and 403 `url_expired` past its expiry.
    func check(path: Substring, query: [String: String]) throws -> UUID? {
        guard let expiresText = query["expires"], let expires = Int(expiresText), let signature = query["signature"] else {
            throw APIError(.forbidden, "invalid_signature", "a signed URL needs 'expires' and 'signature' query parameters")
        }
        var key: UUID?
        if let text = query["key"] {
            guard let parsed = UUID(uuidString: text) else {
                throw APIError(.forbidden, "invalid_signature", "the signed URL's key '\(text)' is not a key id")
            }
            key = parsed
        }
        guard let decoded = String(path).removingPercentEncoding else {
            throw APIError(.forbidden, "invalid_signature", "the signed URL's path is not valid percent-encoding")
        }
        let expected = self.signature(path: decoded, expires: expires, key: key)
        guard HMACSHA256.constantTimeEqual(Array(expected.utf8), Array(signature.utf8)) else {
            throw APIError(.forbidden, "invalid_signature", "the URL's signature does not match its path, expiry and key")
        }
        let seconds = Int(now().timeIntervalSince1970.rounded(.down))
        guard seconds < expires else {
            throw APIError(.forbidden, "url_expired",
                           "this signed URL expired at \(JobView.timestamp(Date(timeIntervalSince1970: Double(expires)))); ask for a new one")
        }
        return key
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// `POST /jobs/{id}/signed-urls`: `{"paths": ["video.mp4", "preview/0000.png", ...], "expires_in": 3600}`.
struct SignedURLRequest: Decodable {
    var paths: [String]
    var expiresIn: Int?

    enum CodingKeys: String, CodingKey { case paths, expiresIn = "expires_in" }

    static let maxPaths = 1000

    /// Parses and checks a request body: 1 to 1000 result paths of the job, each one or two segments of
    /// letters, digits, `.`, `_` and `-` (no `..`), and a lifetime of 1 s to a week.
    static func parse(_ bytes: [UInt8]) throws -> (paths: [String], lifetime: Int) {
        let request: SignedURLRequest
        do {
            request = try JSONDecoder().decode(SignedURLRequest.self, from: Data(bytes))
        } catch {
            throw APIError.badRequest("the body must be JSON {\"paths\": [\"video.mp4\", ...], \"expires_in\": seconds}")
        }
        guard (1...maxPaths).contains(request.paths.count) else {
            throw APIError.unprocessable("invalid_parameters", "paths must name 1 to \(maxPaths) result files, got \(request.paths.count)")
        }
        for path in request.paths where !isResultPath(path) {
            throw APIError.unprocessable("invalid_parameters",
                                         "'\(path)' is not a result path of a job (such as video.mp4, result.tar or preview/0000.png)")
        }
        let lifetime = request.expiresIn ?? URLSigner.defaultLifetimeSeconds
        guard (1...URLSigner.maxLifetimeSeconds).contains(lifetime) else {
            throw APIError.unprocessable("invalid_parameters", "expires_in must be 1 to \(URLSigner.maxLifetimeSeconds) seconds, got \(lifetime)")
        }
        return (request.paths, lifetime)
    }

    static func isResultPath(_ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(segments.count), path.utf8.count <= 200 else { return false }
        return segments.allSatisfy { segment in
            !segment.isEmpty && segment != "." && segment != ".." && !segment.contains("..")
                && segment.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
        }
    }
}

/// The answer: each asked path's signed URL (relative to the server, like every URL of the API).
struct SignedURLsView: Encodable {
    let expires: Int
    let urls: [String: String]

    enum CodingKeys: String, CodingKey { case expires, expiresAt = "expires_at", urls }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(expires, forKey: .expires)
        try container.encode(JobView.timestamp(Date(timeIntervalSince1970: Double(expires))), forKey: .expiresAt)
        try container.encode(urls, forKey: .urls)
    }
}

extension JobsHTTPApplication {
    /// Signs result URLs of a job the asking key owns (any job on an open server): another key's job is a
    /// 404, as everywhere.
    func signURLs(_ id: UUID, body: JobsRequestBody, owner: UUID?) throws -> HTTPResponse {
        guard case let .bytes(bytes) = body else { throw APIError.badRequest("the body must be JSON") }
        let (paths, lifetime) = try SignedURLRequest.parse(bytes)
        guard try backend.job(id: id, owner: owner) != nil else { throw APIError.notFound("no job \(id.lowercased)") }
        let expires = Int(signer.currentTime.timeIntervalSince1970.rounded(.down)) + lifetime
        var urls: [String: String] = [:]
        for path in paths { urls[path] = signer.sign(path: "/jobs/\(id.lowercased)/\(path)", expires: expires, key: owner) }
        return HTTPResponse(status: .ok, contentType: "application/json", bytes: JSON.encode(SignedURLsView(expires: expires, urls: urls)))
    }

    /// The owner a signed request acts as: nil on an open server (which needs no signature and reads none),
    /// else the key it was issued to, once the signature, the expiry and the key hold. A URL issued while the
    /// server was open opens nothing once it has keys.
    func signedOwner(_ head: HTTPRequestHead, authenticator: RequestAuthenticator) throws -> UUID? {
        if try authenticator.isOpen() { return nil }
        guard let key = try signer.check(path: head.path, query: head.query) else {
            throw APIError(.forbidden, "invalid_signature", "this URL was signed while the server had no API keys; ask for a new one")
        }
        return try authenticator.owner(keyID: key)
    }
}
