// `dynstereo serve`: Runs the HTTP API server.
import ArgumentParser

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Runs the HTTP API server.")

    func run() throws {
        throw ValidationError("'serve' is not built yet")
    }
}
