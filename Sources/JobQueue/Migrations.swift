// The numbered schema changes of migrations/*.sql, which the EmbedMigrations build plugin compiles into this
// module (`embeddedTexts`) so that the binary migrates without the source tree.

/// One numbered schema change: `migrations/NNNN_name.sql`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// The migration in the file at `path` (`migrations/0004_retention.sql` is version 4, "retention").
    /// A misnamed file is a programmer error: no binary may ship with it.
    init(path: String, sql: String) {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        let parts = file.dropLast(".sql".count).split(separator: "_", maxSplits: 1)
        guard file.hasSuffix(".sql"), parts.count == 2, parts[0].count == 4,
              parts[0].allSatisfy({ ("0"..."9").contains($0) }), let version = Int(parts[0]), version > 0
        else { preconditionFailure("\(path) is not named NNNN_name.sql") }
        self.init(version: version, name: String(parts[1]), sql: sql)
    }
}

/// Every migration, in the order they are applied.
public enum Migrations {
    public static let all: [Migration] = {
        let migrations = embeddedTexts.map { Migration(path: $0.path, sql: $0.text) }.sorted { $0.version < $1.version }
        for (earlier, later) in zip(migrations, migrations.dropFirst()) {
            precondition(earlier.version != later.version, "two migrations are numbered \(later.version)")
        }
        return migrations
    }()
}
