// `dynstereo keys`: Creates, lists and revokes API keys; the database keeps only each key's SHA-256.
import APIKeys
import ArgumentParser
import Foundation
import JobQueue

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manages API keys.",
        discussion: "Once any key exists, the API asks every client for 'Authorization: Bearer <key>'.",
        subcommands: [Create.self, List.self, Revoke.self])

    /// Options every keys subcommand shares.
    struct DatabaseOptions: ParsableArguments {
        @Option(help: "libpq connection string or URI (default: $DATABASE_URL).")
        var database: String?

        @Flag(help: "Do not apply pending migrations first.")
        var skipMigrations = false

        func store() throws -> APIKeyStore {
            let url = try DatabaseURL.resolve(database)
            if !skipMigrations { try Migrator(url: url).run() }
            return try APIKeyStore(url: url)
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Creates a key and prints it once; it cannot be shown again.")

        @Option(help: "A unique name for the key (its owner, say).")
        var name: String

        @Option(help: "Jobs the key may have queued or running at once (default: the server's setting).")
        var maxQueuedJobs: Int?

        @Option(help: "Bytes the key may upload per UTC day (default: the server's setting).")
        var maxUploadBytesPerDay: Int?

        @OptionGroup var options: DatabaseOptions

        func validate() throws {
            if let maxQueuedJobs, maxQueuedJobs <= 0 { throw ValidationError("--max-queued-jobs must be positive") }
            if let maxUploadBytesPerDay, maxUploadBytesPerDay <= 0 {
                throw ValidationError("--max-upload-bytes-per-day must be positive")
            }
        }

        func run() throws {
            let key = APIKeySecret.generate()
            let record = try options.store().create(name: name, sha256: APIKeySecret.sha256Hex(key),
                                                    maxQueuedJobs: maxQueuedJobs, maxUploadBytesPerDay: maxUploadBytesPerDay)
            // The key alone on stdout, so scripts can capture it; the rest goes to stderr.
            print(key)
            FileHandle.standardError.write(Data("created key '\(record.name)' (id \(record.id.uuidString.lowercased())); store it now, it is not shown again\n".utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lists keys (never the keys themselves).")

        @OptionGroup var options: DatabaseOptions

        func run() throws {
            let keys = try options.store().list()
            if keys.isEmpty {
                print("no API keys: the server runs open")
                return
            }
            let formatter = ISO8601DateFormatter()
            for key in keys {
                let status = key.revokedAt.map { "revoked \(formatter.string(from: $0))" } ?? "active"
                let queued = key.maxQueuedJobs.map(String.init) ?? "default"
                let bytes = key.maxUploadBytesPerDay.map(String.init) ?? "default"
                print("\(key.id.uuidString.lowercased())  \(key.name)  \(status)  created \(formatter.string(from: key.createdAt))  max-queued-jobs=\(queued)  max-upload-bytes-per-day=\(bytes)")
            }
        }
    }

    /// A revoke of a key that does not exist: a one-line message and exit status 1, without the usage text.
    struct UnknownKey: Error, CustomStringConvertible {
        let key: String
        var description: String { "no API key named or with id '\(key)'" }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revokes a key by name or id; its requests then get 403.")

        @Argument(help: "The key's name or id.")
        var key: String

        @OptionGroup var options: DatabaseOptions

        func run() throws {
            guard let record = try options.store().revoke(key) else { throw UnknownKey(key: key) }
            print("revoked key '\(record.name)' (id \(record.id.uuidString.lowercased()))")
        }
    }
}
