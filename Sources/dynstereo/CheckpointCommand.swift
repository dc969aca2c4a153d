// `dynstereo checkpoint`: Lists the tensors of a PyTorch checkpoint.
import ArgumentParser

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "Lists the tensors of a PyTorch checkpoint.")

    func run() throws {
        throw ValidationError("'checkpoint' is not built yet")
    }
}
