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
        do {
            let url = try DatabaseURL.resolve(database)
            let applied = try Migrator(url: url).run()
            print(applied.isEmpty ? "database is up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
        } catch let error as JobQueueError {
            throw ValidationError(error.description)
        } catch let error as PostgresError {
            throw ValidationError(error.description)
        }
    }
}
