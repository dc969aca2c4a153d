// Errors of the job queue that callers act on (the HTTP layer maps them to statuses).
import Foundation

/// Errors of the job queue, each carrying enough context to show a user.
public enum JobQueueError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The same idempotency key was used before with a different payload.
    case idempotencyConflict(key: String, existing: UUID)
    case invalidParameters(String)
    case invalidInput(String)
    case invalidCursor(String)
    /// No `--database` and no `DATABASE_URL`.
    case noDatabaseURL
    /// A migration file failed; the message names it.
    case migrationFailed(version: Int, name: String, message: String)
    /// The database has migrations this binary does not know (it is older than the schema).
    case unknownMigrations([Int])
    /// An API key with this name exists already.
    case keyNameTaken(String)
    /// The API key has `limit` jobs queued or running already.
    case queuedJobsLimit(limit: Int)
    /// The upload would take the API key past its bytes for this UTC day.
    case dailyUploadLimit(limit: Int, used: Int, requested: Int)

    public var description: String {
        switch self {
        case let .idempotencyConflict(key, existing):
            return "idempotency key '\(key)' was already used for job \(existing.uuidString.lowercased()) with a different payload"
        case let .invalidParameters(message): return "invalid job parameters: \(message)"
        case let .invalidInput(message): return "invalid job input: \(message)"
        case let .invalidCursor(cursor): return "invalid list cursor '\(cursor)'"
        case .noDatabaseURL: return "no database given: pass --database URL or set DATABASE_URL"
        case let .migrationFailed(version, name, message): return "migration \(String(format: "%04d", version))_\(name) failed: \(message)"
        case let .keyNameTaken(name): return "an API key named '\(name)' exists already"
        case let .queuedJobsLimit(limit):
            return "this API key has \(limit) job\(limit == 1 ? "" : "s") queued or running, its limit; submit again once one has finished"
        case let .dailyUploadLimit(limit, used, requested):
            return "this upload of \(requested) bytes would pass this API key's limit of \(limit) bytes per UTC day (\(used) used today)"
        case let .unknownMigrations(versions):
            return "the database has migrations this binary does not know: \(versions.map(String.init).joined(separator: ", "))"
        }
    }
}

/// Resolves the database connection string of a command: the `--database` option, else `DATABASE_URL`.
public enum DatabaseURL {
    public static func resolve(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let option, !option.isEmpty { return option }
        if let url = environment["DATABASE_URL"], !url.isEmpty { return url }
        throw JobQueueError.noDatabaseURL
    }
}
