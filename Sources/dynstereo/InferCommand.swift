// `dynstereo infer`: Runs the network on a stereo video from folders or tars.
import ArgumentParser

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "Runs the network on a stereo video from folders or tars.")

    func run() throws {
        throw ValidationError("'infer' is not built yet")
    }
}
