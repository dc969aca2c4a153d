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
        guard let key = Self.bearerKey(authorization) else {
            guard try !verifier.isOpen() else { return nil }
            throw APIError(.unauthorized, "unauthorized", "the Authorization header must be 'Bearer <key>'", headers: challenge)
        }
        do {
            return try verifier.owner(of: key)
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

    /// The key of `Bearer <key>` (the scheme in any case, the key without surrounding white space); nil when
    /// the header is not of that form. An ASCII header is read by bytes: Foundation's trimming (through
    /// NSString) was half of a keyed poll's authentication. Any other takes the plain way, `bearerKeyByCharacters`.
    static func bearerKey(_ authorization: String) -> String? {
        let bytes = authorization.utf8
        guard bytes.allSatisfy({ $0 < 128 }) else { return bearerKeyByCharacters(authorization) }
        let parts = bytes.split(separator: UInt8(ascii: " "), maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].count == 6, zip(parts[0], "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        // In ASCII, `CharacterSet.whitespaces` is the space and the tab.
        var key = parts[1][...]
        while let first = key.first, first == 32 || first == 9 { key = key.dropFirst() }
        while let last = key.last, last == 32 || last == 9 { key = key.dropLast() }
        return String(decoding: key, as: UTF8.self)
    }

    /// `bearerKey` by Characters and Foundation's trimming: the reference, and the way for non-ASCII headers.
    static func bearerKeyByCharacters(_ authorization: String) -> String? {
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

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
