// API keys as the service and `dynstereo keys` see them. The store handles SHA-256 digests only: keys are
// made and hashed by the caller, so a key never reaches the database or its logs.
import Foundation

/// An API key's stored description (never the key itself).
public struct APIKeyRecord: Equatable, Sendable {
    public var id: UUID
    public var name: String
    /// Jobs the key may have queued or running at once; nil means the server's default.
    public var maxQueuedJobs: Int?
    /// Upload bytes the key may send per UTC day; nil means the server's default.
    public var maxUploadBytesPerDay: Int?
    public var createdAt: Date
    public var revokedAt: Date?

    public var isRevoked: Bool { revokedAt != nil }
}

/// Creates, lists, revokes and looks up API keys in PostgreSQL. Thread-safe.
public final class APIKeyStore: @unchecked Sendable {
    let pool: ConnectionPool

    /// Connects once to fail early on a bad URL or an unreachable server.
    public init(url: String) throws {
        pool = ConnectionPool(url: url)
        try pool.withConnection { connection in _ = try connection.execute(Queries.ping) }
    }

    /// Stores a new key by its SHA-256 (64 lowercase hex digits). Throws `keyNameTaken` for a name in use.
    public func create(name: String, sha256: String, maxQueuedJobs: Int? = nil,
                       maxUploadBytesPerDay: Int? = nil) throws -> APIKeyRecord {
        guard !name.isEmpty, name.utf8.count <= 100, !name.contains(where: \.isNewline) else {
            throw JobQueueError.invalidParameters("a key name must be 1 to 100 bytes on one line")
        }
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            preconditionFailure("a key's SHA-256 is 64 lowercase hex digits")
        }
        if let maxQueuedJobs, maxQueuedJobs <= 0 {
            throw JobQueueError.invalidParameters("max queued jobs must be positive, got \(maxQueuedJobs)")
        }
        if let maxUploadBytesPerDay, maxUploadBytesPerDay <= 0 {
            throw JobQueueError.invalidParameters("max upload bytes per day must be positive, got \(maxUploadBytesPerDay)")
        }
        // Once: a second run after a lost COMMIT would find its own key and report the name taken.
        let row = try pool.withConnection(.once) { connection in
            try connection.execute(Queries.insertAPIKey, [
                .uuid(UUID()), .text(name), .text(sha256),
                maxQueuedJobs.map(SQLValue.int) ?? .null, maxUploadBytesPerDay.map(SQLValue.int) ?? .null,
            ]).first
        }
        guard let row else { throw JobQueueError.keyNameTaken(name) }
        return try Queries.decodeAPIKey(row)
    }

    /// Every key, oldest first, revoked ones included.
    public func list() throws -> [APIKeyRecord] {
        try pool.withConnection { connection in
            try connection.execute(Queries.listAPIKeys).rows.map(Queries.decodeAPIKey)
        }
    }

    /// Revokes the key with this name or id; nil when there is none. Revoking twice changes nothing.
    public func revoke(_ nameOrID: String) throws -> APIKeyRecord? {
        let id = UUID(uuidString: nameOrID)
        return try pool.withConnection { connection in
            try connection.execute(Queries.revokeAPIKey, [.text(nameOrID), id.map(SQLValue.uuid) ?? .null])
                .first.map(Queries.decodeAPIKey)
        }
    }

    /// The key whose SHA-256 this is, revoked or not; nil for an unknown key.
    public func key(sha256: String) throws -> APIKeyRecord? {
        try pool.withConnection { connection in
            try connection.execute(Queries.apiKeyByHash, [.text(sha256)]).first.map(Queries.decodeAPIKey)
        }
    }

    /// Whether any key was ever created; with none the service runs open.
    public func anyKeys() throws -> Bool {
        try pool.withConnection { connection in
            guard let row = try connection.execute(Queries.anyAPIKey).first else { return false }
            return try row.bool(0)
        }
    }
}
