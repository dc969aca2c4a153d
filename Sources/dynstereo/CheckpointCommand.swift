// `dynstereo checkpoint`: Lists the tensors of a PyTorch checkpoint.
import ArgumentParser
import Checkpoint
import Foundation

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Lists the tensors of a PyTorch checkpoint.",
        discussion: "Prints one line per tensor (name, dtype, shape), then the tensor and parameter counts. "
            + "Reads the zip format of torch.save and the pre-1.6 format; no Python code in the file is run.")

    @Argument(help: "The checkpoint file (.pth).")
    var file: String

    func run() throws {
        let stateDict = try StateDict.load(URL(fileURLWithPath: file))
        var lines: [String] = []
        lines.reserveCapacity(stateDict.entries.count + 1)
        for (name, tensor) in stateDict.entries {
            let shape = tensor.shape.map(String.init).joined(separator: ", ")
            lines.append("\(name)  \(tensor.dtype.rawValue)  [\(shape)]")
        }
        lines.append("\(stateDict.entries.count) tensors, \(stateDict.parameterCount) parameters")
        print(lines.joined(separator: "\n"))
    }
}
