// `dynstereo infer`: the network on a local stereo video, no server involved.
import ArgumentParser
import DynamicStereo
import Foundation
import Media

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Runs the network on a stereo video (folders or tars of PNG frames) and writes disparity files.")

    @Option(help: "Left frames: a folder or a tar (optionally gzipped) of PNG frames, ordered by name.")
    var left: String
    @Option(help: "Right frames, as --left.")
    var right: String
    @Option(help: "A DynamicStereo checkpoint (dynamic_stereo_sf.pth or dynamic_stereo_dr_sf.pth).")
    var checkpoint: String
    @Option(help: "The folder to write disparity.npy, disparity/, color/ (and depth/, video/) into.")
    var output: String
    @Option(help: "Refinement iterations at 1/4 scale (half as many at 1/16 and 1/8).")
    var iters: Int = InferenceParameters.defaultIters
    @Option(help: "Frames per window; windows overlap by half.")
    var kernelSize: Int = InferenceParameters.defaultKernelSize
    @Option(help: "Focal length in pixels, for depth/ (needs --baseline-m).")
    var focalPx: Double?
    @Option(help: "Stereo baseline in metres, for depth/ (needs --focal-px).")
    var baselineM: Double?

    func validate() throws {
        let parameters = InferenceParameters(iters: iters, kernelSize: kernelSize, focalPx: focalPx, baselineM: baselineM)
        do { try parameters.validate() } catch { throw ValidationError(error.message(for: .commandLine)) }
    }

    func run() throws {
        let started = Date()
        let sequence = try StereoSequence.load(left: URL(fileURLWithPath: left), right: URL(fileURLWithPath: right))
        for warning in sequence.warnings { printError("warning: \(warning)") }
        let first = sequence.left[0]
        printError("read \(sequence.names.count) frames of \(first.width)x\(first.height); loading \(checkpoint)")
        let estimator = try StereoVideoEstimator(checkpoint: URL(fileURLWithPath: checkpoint))

        let computeStart = Date()
        let disparity = try estimator.estimate(
            left: sequence.left, right: sequence.right, iters: iters, kernelSize: kernelSize,
            progress: { p in
                let elapsed = Date().timeIntervalSince(computeStart)
                let left = p.framesDone > 0 ? elapsed / Double(p.framesDone) * Double(p.framesTotal - p.framesDone) : 0
                printError(String(format: "window %d of %d, %d/%d frames, %.1f s elapsed, about %.0f s left",
                                  p.window, p.windows, p.framesDone, p.framesTotal, elapsed, left))
            })

        let sources = InferenceWindow.outputFrames(frames: sequence.names.count, kernelSize: kernelSize)
        let files = try ResultFiles.make(disparity: disparity, frameNames: sources.map { sequence.names[$0] },
                                         left: sources.map { sequence.left[$0] },
                                         focalPx: focalPx, baselineM: baselineM)
        let root = URL(fileURLWithPath: output)
        for file in files {
            let url = root.appendingPathComponent(file.path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try file.data.write(to: url, options: .atomic)
        }
        let values = disparity.data
        let seconds = Date().timeIntervalSince(started)
        print(String(format: "%d frames of %dx%d in %.1f s (%.2f s/frame); disparity %.2f to %.2f px; %d files in %@",
                     disparity.shape[0], first.width, first.height, seconds, seconds / Double(max(1, disparity.shape[0])),
                     values.min() ?? 0, values.max() ?? 0, files.count, output))
    }
}

/// Writes a line to standard error (progress and warnings keep standard output for the summary).
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
