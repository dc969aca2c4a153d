// `dynstereo migrate`: Applies the database migrations.
import ArgumentParser

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Applies the database migrations.")

    func run() throws {
        throw ValidationError("'migrate' is not built yet")
    }
}
