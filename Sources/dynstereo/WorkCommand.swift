// `dynstereo work`: Runs a headless worker that takes jobs from the database.
import ArgumentParser

struct WorkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "work", abstract: "Runs a headless worker that takes jobs from the database.")

    func run() throws {
        throw ValidationError("'work' is not built yet")
    }
}
