// `dynstereo demo`: Writes the demo weights and a demo clip, so the service can be tried with nothing but the project.
import ArgumentParser
import Checkpoint
import DynamicStereo
import Foundation
import Inference
import Media
import TensorKernels

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Writes demo weights and a demo stereo clip into a folder.",
        discussion: """
            Writes OUTPUT/demo_formula.pth, every tensor of the network filled by the golden data's weight formula \
            (they run every layer like a real checkpoint but are NOT a trained depth model, so the disparity they \
            give is meaningless), and a random-dot stereo clip with a known disparity: OUTPUT/demo/left.tar and \
            OUTPUT/demo/right.tar (PNG frames 0000.png, ...) and its true disparity OUTPUT/demo/disparity.npy \
            (float32 [T, H, W]). deploy/start --smoke runs on these.
            """)

    @Option(help: "The folder to write into; created if missing, files of the same names replaced.")
    var output: String

    func run() throws {
        let folder = URL(fileURLWithPath: output)
        let clipFolder = folder.appendingPathComponent("demo")
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isFolder), !isFolder.boolValue {
            throw DemoError(description: "--output \(output) is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(at: clipFolder, withIntermediateDirectories: true)
        } catch {
            throw DemoError(description: "cannot create the folder \(clipFolder.path) (is a part of the path a file, or not writable?)")
        }

        let checkpoint = folder.appendingPathComponent("demo_formula.pth")
        let tensors = try Self.networkTensorShapes().map { ($0.name, FormulaWeights.tensor(name: $0.name, shape: $0.shape)) }
        try CheckpointWriter.write(tensors, to: checkpoint)

        let clip = RandomDotStereo.demo
        for (side, view) in [("left", clip.left(frame:)), ("right", clip.right(frame:))] {
            let tar = TarWriter()
            for t in 0..<clip.frames {
                try tar.addFile(path: Self.frameName(t), contents: try PNG.encodeRGB8(view(t)))
            }
            try tar.finish()
            try tar.data.write(to: clipFolder.appendingPathComponent("\(side).tar"), options: .atomic)
        }
        var values: [Float] = []
        values.reserveCapacity(clip.frames * clip.height * clip.width)
        for t in 0..<clip.frames {
            for y in 0..<clip.height {
                for x in 0..<clip.width { values.append(Float(clip.disparity(x: x, y: y, frame: t))) }
            }
        }
        let truth = Tensor(shape: [clip.frames, clip.height, clip.width], data: values)
        try NPY.encode(truth).write(to: clipFolder.appendingPathComponent("disparity.npy"), options: .atomic)

        print("""
            wrote \(checkpoint.path): \(tensors.count) tensors of the weight formula (not a trained model)
            wrote \(clipFolder.path)/left.tar, right.tar: \(clip.frames) frames of \(clip.width)x\(clip.height), \
            disparity \(clip.backgroundDisparity) px (background) and \(clip.squareDisparity) px (the square), in disparity.npy
            """)
    }

    static func frameName(_ t: Int) -> String { String(format: "%04d.png", t) }

    /// The name and shape of every tensor the network binds, in binding order. The network knows them, not a
    /// list here: built from no weights, its strict load reports each one missing, with the shape it wants.
    static func networkTensorShapes() throws -> [(name: String, shape: [Int])] {
        try ProcessorCheck.requireBuildTarget()  // building the network runs the kernels' module's code
        do {
            _ = try DynamicStereoNetwork(stateDict: [:])
        } catch let error as WeightLoadingError {
            return try error.problems.map { problem in
                guard case let .missing(name, shape) = problem else {
                    throw DemoError(description: "the network reported \(problem) when built from no weights")
                }
                return (name, shape)
            }
        }
        throw DemoError(description: "the network built from no weights at all")
    }
}

/// What `dynstereo demo` reports on one line.
struct DemoError: Error, CustomStringConvertible {
    let description: String
}
