// Who is asking, over HTTP: the `Authorization: Bearer <key>` header read and checked with APIKeys, and the
// 401/403 a client gets when it does not open the API.
import APIKeys
import Foundation
import HTTPTransport

/// Decides from a request's Authorization header whether it may use the job API, and as whom.
public protocol RequestAuthenticator: Sendable {
    /// The asking key's id, or nil when the server runs open (no key was ever created). Throws `APIError`:
    /// 401 for a missing, malformed or unknown key, 403 for a revoked one.
    func owner(authorization: String?) throws -> UUID?
    /// Whether the server runs open (no key was ever created): then no request needs a key or signature.
    func isOpen() throws -> Bool
    /// The key a signed URL was issued to, if it is still in force; throws `APIError` 403 for one since
    /// revoked or deleted, so that a key's signed URLs end with it.
    func owner(keyID: UUID) throws -> UUID
}

/// `RequestAuthenticator` over `APIKeyVerifier`. An open server ignores whatever a client sends. One statement
/// per request in the usual cases: a key that is found proves the server closed (and names the owner), so
/// whether any key exists is asked only when none is presented or the presented one is unknown.
public final class BearerAuthenticator: RequestAuthenticator, @unchecked Sendable {
    private let verifier: APIKeyVerifier

    public init(verifier: APIKeyVerifier) {
        self.verifier = verifier
    }

    public func owner(authorization: String?) throws -> UUID? {
        let challenge = [("WWW-Authenticate", "Bearer")]
        guard let authorization else {
            guard try !verifier.isOpen() else { return nil }
            throw APIError(.unauthorized, "unauthorized", "this server needs 'Authorization: Bearer <key>'", headers: challenge)
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            guard try !verifier.isOpen() else { return nil }
            throw APIError(.unauthorized, "unauthorized", "the Authorization header must be 'Bearer <key>'", headers: challenge)
        }
        // An open server ignores the key: known from memory, that costs no statement.
        if verifier.isKnownOpen { return nil }
        do {
            return try verifier.owner(of: parts[1].trimmingCharacters(in: .whitespaces))
        } catch let refusal as APIKeyRefusal {
            switch refusal {
            case .unknown:
                guard try !verifier.isOpen() else { return nil }
                throw APIError(.unauthorized, "unauthorized", refusal.description, headers: challenge)
            case .revoked: throw APIError(.forbidden, "key_revoked", refusal.description)
            }
        }
    }

    public func isOpen() throws -> Bool { try verifier.isOpen() }

    public func owner(keyID: UUID) throws -> UUID {
        do {
            return try verifier.owner(id: keyID)
        } catch let refusal as APIKeyRefusal {
            switch refusal {
            case .unknown: throw APIError(.forbidden, "invalid_signature", "the key this URL was signed for no longer exists")
            case .revoked: throw APIError(.forbidden, "key_revoked", "\(refusal.description); its signed URLs ended with it")
            }
        }
    }
}
