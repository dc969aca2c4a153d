// Who is asking: the `Authorization: Bearer <key>` header checked against the stored keys' SHA-256.
import Foundation
import JobQueue

/// Decides from a request's Authorization header whether it may use the job API, and as whom.
public protocol RequestAuthenticator: Sendable {
    /// The asking key's id, or nil when the server runs open (no key was ever created). Throws `APIError`:
    /// 401 for a missing, malformed or unknown key, 403 for a revoked one.
    func owner(authorization: String?) throws -> UUID?
}

/// `RequestAuthenticator` over `APIKeyStore`. The open/closed decision is made per request, so a key
/// created while the server runs closes it at once.
public final class APIKeyAuthenticator: RequestAuthenticator, @unchecked Sendable {
    private let store: APIKeyStore

    public init(store: APIKeyStore) {
        self.store = store
    }

    public func owner(authorization: String?) throws -> UUID? {
        guard try store.anyKeys() else { return nil }
        let challenge = [("WWW-Authenticate", "Bearer")]
        guard let authorization else {
            throw APIError(.unauthorized, "unauthorized", "this server needs 'Authorization: Bearer <key>'", headers: challenge)
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError(.unauthorized, "unauthorized", "the Authorization header must be 'Bearer <key>'", headers: challenge)
        }
        let key = parts[1].trimmingCharacters(in: .whitespaces)
        guard let record = try store.key(sha256: APIKeySecret.sha256Hex(key)) else {
            throw APIError(.unauthorized, "unauthorized", "unknown API key", headers: challenge)
        }
        guard !record.isRevoked else {
            throw APIError(.forbidden, "key_revoked", "API key '\(record.name)' was revoked")
        }
        return record.id
    }
}
