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
///
/// With `caching`, the answers (whether any key exists, the key of a digest or of an id) are kept in memory
/// between the key changes a `ChangeListener` reports (`apply`): migration 0010's trigger announces every
/// write to the keys, by any process (`dynstereo keys` included), and each drops every answer, so a key
/// revoked or deleted elsewhere counts from the moment its notification arrives, and so does the first key
/// for requests without one. Nothing is kept while the listener is not listening, and an unknown key is
/// never kept (it costs a statement, not memory): a key just created elsewhere is found at its first use,
/// even before its notification, and never taken for a request to an open server.
public final class APIKeyVerifier: @unchecked Sendable {
    private let store: APIKeyStore
    /// Nil without caching: every question is a statement.
    private let answers: NotifiedCache<Question, Answer>?

    private enum Question: Hashable {
        case anyKeys
        case digest(String)
        case id(UUID)
    }

    private enum Answer {
        case anyKeys(Bool)
        case key(APIKeyRecord)

        var record: APIKeyRecord? {
            if case let .key(record) = self { return record }
            return nil
        }
    }

    /// `caching`: keep answers between key changes, as far as `apply` says they hold (at most
    /// `cacheCapacity` of them).
    public init(store: APIKeyStore, caching: Bool = false, cacheCapacity: Int = 4096) {
        self.store = store
        answers = caching ? NotifiedCache(capacity: cacheCapacity) : nil
    }

    /// Takes in a change the listener heard (nothing to do without caching).
    public func apply(_ change: StoreChange) {
        guard let answers else { return }
        switch change {
        case .listening: answers.listening()
        case .lost: answers.lost()
        case .keys: answers.invalidateAll()
        case .job: break
        }
    }

    /// What the kept answers did (nil without caching).
    public var cacheStatistics: NotifiedCacheStatistics? { answers?.currentStatistics }

    /// The kept answer to `question`, else `read`'s, kept when there is one (each costs 1 of the capacity).
    private func answer(_ question: Question, _ read: () throws -> Answer?) throws -> Answer? {
        guard let answers else { return try read() }
        if let kept = answers.lookup(question) { return kept }
        return try answers.load(question) { try read().map { ($0, 1) } }
    }

    /// Whether the service runs open: no key was ever created. Asked per request, so a key created while a
    /// server runs closes it at once (with caching, once its notification has arrived).
    public func isOpen() throws -> Bool {
        guard case let .anyKeys(any)? = try answer(.anyKeys, { .anyKeys(try store.anyKeys()) }) else {
            preconditionFailure("the answer to whether keys exist is a yes or a no")
        }
        return !any
    }

    /// The id of the stored key `key` is; throws `APIKeyRefusal` for an unknown or revoked key.
    public func owner(of key: String) throws -> UUID {
        let digest = APIKeySecret.sha256Hex(key)
        guard let record = try answer(.digest(digest), { try store.key(sha256: digest).map(Answer.key) })?.record else {
            throw APIKeyRefusal.unknown
        }
        guard !record.isRevoked else { throw APIKeyRefusal.revoked(name: record.name) }
        return record.id
    }

    /// The id of the key a signed URL was issued to, checked to be in force still: throws
    /// `APIKeyRefusal` for a key since deleted (unknown) or revoked, so its signed URLs end with it.
    public func owner(id: UUID) throws -> UUID {
        guard let record = try answer(.id(id), { try store.key(id: id).map(Answer.key) })?.record else { throw APIKeyRefusal.unknown }
        guard !record.isRevoked else { throw APIKeyRefusal.revoked(name: record.name) }
        return record.id
    }
}
