// `dynstereo migrate`: Applies the database migrations.
import ArgumentParser
import JobQueue
import Logging

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Applies the database migrations.",
        discussion: "Each migration runs in its own transaction under an advisory lock; running it again is a no-op.")

    @Option(help: "libpq connection string or URI (default: $DATABASE_URL).")
    var database: String?

    func run() throws {
        // Queue errors describe themselves in one line; ArgumentParser prints "Error: ..." and exits 1.
        let applied = try Migrator(url: try DatabaseURL.resolve(database)).run()
        print(applied.isEmpty ? "database is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
    }
}
