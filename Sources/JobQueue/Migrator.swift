// Applies the embedded migrations in order, once each, one process at a time.
import Foundation
import Logging

/// Applies `Migrations.all` to a database: each migration in its own transaction, recorded in
/// `schema_migrations`, under a session advisory lock so concurrent `dynstereo migrate` runs queue up
/// instead of racing. Running it again applies nothing.
public struct Migrator {
    /// The advisory lock key ("dynstereo" in ASCII, truncated to 63 bits); shared by every schema of a
    /// database, which only serialises migrations that would otherwise run in parallel.
    static let lockKey = 0x6479_6E73_7465_7265

    private let url: String
    private let migrations: [Migration]
    private let logger: Logger

    public init(url: String, migrations: [Migration] = Migrations.all, logger: Logger = Logger(label: "dynstereo.migrate")) {
        self.url = url
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies the pending migrations and returns their versions (empty when the schema is current).
    @discardableResult
    public func run() throws -> [Int] {
        let connection = try PostgresConnection(url: url)
        try connection.execute(Queries.migrationLock, [.int(Self.lockKey)])
        defer { _ = try? connection.execute(Queries.migrationUnlock, [.int(Self.lockKey)]) }
        try connection.execute(Queries.createMigrationsTable)
        let applied = Set(try connection.execute(Queries.appliedMigrations).rows.map { try $0.int(0) })
        let unknown = applied.subtracting(migrations.map(\.version)).sorted()
        guard unknown.isEmpty else { throw JobQueueError.unknownMigrations(unknown) }

        var done: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            do {
                try connection.transaction {
                    try connection.executeScript(migration.sql, name: "migration \(migration.version)")
                    try connection.execute(Queries.recordMigration, [.int(migration.version), .text(migration.name)])
                }
            } catch let error as PostgresError {
                if error.isConnectionLoss { throw error }
                throw JobQueueError.migrationFailed(version: migration.version, name: migration.name, message: error.description)
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            done.append(migration.version)
        }
        return done
    }
}
