// Who is asking, as far as keys go: a presented key checked against the stored keys' SHA-256. Reading the key
// out of a request (the `Authorization: Bearer` header) and the HTTP statuses belong to the API on top.
import Foundation
import JobQueue

/// Why a presented key does not open the service.
public enum APIKeyRefusal: Error, Equatable, CustomStringConvertible {
    /// No stored key has this key's SHA-256.
    case unknown
    /// The key exists but was revoked; `name` is its stored name.
    case revoked(name: String)

    public var description: String {
        switch self {
        case .unknown: return "unknown API key"
        case let .revoked(name): return "API key '\(name)' was revoked"
        }
    }
}

/// Checks presented keys against `APIKeyStore`, which holds only their SHA-256. The store lives in JobQueue
/// because the enqueue transaction reads and locks a key's row for its limits; this type adds what a key
/// means to a client. Thread-safe.
public final class APIKeyVerifier: @unchecked Sendable {
    private let store: APIKeyStore

    public init(store: APIKeyStore) {
        self.store = store
    }

    /// Whether the service runs open: no key was ever created. Asked per request, so a key created while a
    /// server runs closes it at once.
    public func isOpen() throws -> Bool {
        try !store.anyKeys()
    }

    /// The id of the stored key `key` is; throws `APIKeyRefusal` for an unknown or revoked key.
    public func owner(of key: String) throws -> UUID {
        guard let record = try store.key(sha256: APIKeySecret.sha256Hex(key)) else { throw APIKeyRefusal.unknown }
        guard !record.isRevoked else { throw APIKeyRefusal.revoked(name: record.name) }
        return record.id
    }

    /// The id of the key a signed URL was issued to, checked to be in force still: throws
    /// `APIKeyRefusal` for a key since deleted (unknown) or revoked, so its signed URLs end with it.
    public func owner(id: UUID) throws -> UUID {
        guard let record = try store.key(id: id) else { throw APIKeyRefusal.unknown }
        guard !record.isRevoked else { throw APIKeyRefusal.revoked(name: record.name) }
        return record.id
    }
}
