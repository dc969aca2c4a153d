// `dynstereo infer`: the network on a local stereo video, no server involved.
import ArgumentParser
import DynamicStereo
import Foundation
import Media
import VideoIO

struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Runs the network on a stereo video (video files, or folders or tars of PNG frames) and writes disparity files.")

    @Option(help: "Left view: a video file (MP4, MOV, MKV, AVI), or a folder or tar (optionally gzipped) of PNG frames ordered by name.")
    var left: String?
    @Option(help: "Right view, as --left.")
    var right: String?
    @Option(help: "One video holding both views (instead of --left and --right); needs --layout.")
    var stereo: String?
    @Option(help: "How --stereo packs the views: sbs (left | right) or tb (top / bottom).")
    var layout: String?
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
    @Option(help: "Source frames to skip first (0-based).")
    var startFrame: Int = 0
    @Option(help: "Keep every n-th frame from --start-frame on.")
    var frameStep: Int = 1
    @Option(help: "Keep at most this many frames (after --start-frame and --frame-step).")
    var frameCount: Int?
    @Option(help: "Run the network on frames area-averaged so the longer side is at most N px; disparity comes back at full size.")
    var maxSize: Int?
    @Option(help: "Frame rate of video.mp4 and color.mp4 for frame folders and tars (default 30); a video's own rate / --frame-step otherwise.")
    var fps: Double?
    @Option(help: "Principal point x in pixels for points/ (default (W-1)/2).")
    var cxPx: Double?
    @Option(help: "Principal point y in pixels for points/ (default (H-1)/2).")
    var cyPx: Double?
    @Option(help: "Leave points farther than this (metres) out of points/.")
    var maxDepthM: Double?
    @Option(help: "Comma-separated results to write: npy, disparity, color, video, depth, points, video_mp4, color_mp4 (default: all that apply; depth and points need --focal-px and --baseline-m).")
    var outputs: String?

    func validate() throws {
        let parameters = InferenceParameters(iters: iters, kernelSize: kernelSize, focalPx: focalPx, baselineM: baselineM)
        do { try parameters.validate() } catch { throw ValidationError(error.message(for: .commandLine)) }
        _ = try input()
        if let problem = selection.problem(for: .commandLine) { throw ValidationError(problem) }
        if let maxSize, maxSize < 32 { throw ValidationError("--max-size must be at least 32, got \(maxSize)") }
        if let fps, FrameRate(String(fps)) == nil { throw ValidationError("--fps must be a positive number, got \(fps)") }
        for (name, value) in [("--cx-px", cxPx), ("--cy-px", cyPx), ("--max-depth-m", maxDepthM)] {
            guard let value else { continue }
            guard value.isFinite, name != "--max-depth-m" || value > 0 else {
                throw ValidationError("\(name) must be a \(name == "--max-depth-m" ? "positive" : "finite") number, got \(value)")
            }
            guard parameters.isCalibrated else { throw ValidationError("\(name) is for points/, which needs --focal-px and --baseline-m") }
        }
        do { _ = try resultKinds() } catch { throw ValidationError(error.message) }
    }

    /// The two views as the flags name them: --left and --right, or --stereo with --layout.
    private func input() throws -> StereoInput {
        switch (left, right, stereo) {
        case let (left?, right?, nil):
            guard layout == nil else { throw ValidationError("--layout goes with --stereo, not with --left and --right") }
            return .sides(left: URL(fileURLWithPath: left), right: URL(fileURLWithPath: right))
        case let (nil, nil, stereo?):
            guard let name = layout else { throw ValidationError("--stereo needs --layout sbs or --layout tb") }
            guard let packing = StereoLayout(rawValue: name) else {
                throw ValidationError("--layout must be sbs or tb, got '\(name)'")
            }
            return .packed(URL(fileURLWithPath: stereo), packing)
        default:
            throw ValidationError("give --left and --right, or --stereo with --layout")
        }
    }

    private var selection: FrameSelection { FrameSelection(start: startFrame, step: frameStep, count: frameCount) }

    private func resultKinds() throws(InvalidResultKinds) -> Set<ResultKind> {
        try ResultKind.parse(outputs, calibrated: focalPx != nil && baselineM != nil, surface: .commandLine)
    }

    func run() throws {
        let started = Date()
        let input = try input()
        if fps != nil, try input.includesVideo {
            throw MediaError.invalidArgument("--fps is for frame folders and tars; a video's MP4s run at its own rate / --frame-step")
        }
        let clip = try StereoClip.load(input, selection: selection)
        for warning in clip.warnings { printError("warning: \(warning)") }
        let (width, height) = (clip.width, clip.height)
        let network = maxSize.map { ResolutionCap(maxSize: $0).networkSize(width: width, height: height) }
            ?? (width: width, height: height)
        let scaled = network != (width, height)
        printError("read \(clip.count) frames of \(width)x\(height)" + (scaled ? ", network at \(network.width)x\(network.height)" : "")
                   + "; loading \(checkpoint)")
        let estimator = try StereoVideoEstimator(checkpoint: URL(fileURLWithPath: checkpoint))

        let computeStart = Date()
        let networkLeft = scaled ? clip.left.map { ResolutionCap.downscale($0, width: network.width, height: network.height) } : clip.left
        let networkRight = scaled ? clip.right.map { ResolutionCap.downscale($0, width: network.width, height: network.height) } : clip.right
        let networkDisparity = try estimator.estimate(
            left: networkLeft, right: networkRight, iters: iters, kernelSize: kernelSize,
            progress: { p in
                let elapsed = Date().timeIntervalSince(computeStart)
                let left = p.framesDone > 0 ? elapsed / Double(p.framesDone) * Double(p.framesTotal - p.framesDone) : 0
                printError(String(format: "window %d of %d, %d/%d frames, %.1f s elapsed, about %.0f s left",
                                  p.window, p.windows, p.framesDone, p.framesTotal, elapsed, left))
            })
        let disparity = ResolutionCap.upsample(networkDisparity, width: width, height: height)

        let sources = InferenceWindow.outputFrames(frames: clip.count, kernelSize: kernelSize)
        let camera = focalPx.flatMap { focal in
            baselineM.map { StereoCamera(focalPx: focal, baselineM: $0, cxPx: cxPx, cyPx: cyPx, maxDepthM: maxDepthM) }
        }
        // A video's own rate slowed by the step; frames from folders and tars have none, so --fps or 30.
        let frameRate = clip.sourceFrameRate?.divided(by: frameStep) ?? FrameRate(String(fps ?? 30))!  // validated
        let files = try ResultWriter.write(disparity: disparity, names: sources.map { clip.names[$0] },
                                           left: sources.map { clip.left[$0] }, to: URL(fileURLWithPath: output),
                                           kinds: resultKinds(), camera: camera, frameRate: frameRate)
        let values = disparity.data
        let seconds = Date().timeIntervalSince(started)
        print(String(format: "%d frames of %dx%d in %.1f s (%.2f s/frame); disparity %.2f to %.2f px; %d files in %@",
                     disparity.shape[0], width, height, seconds, seconds / Double(max(1, disparity.shape[0])),
                     values.min() ?? 0, values.max() ?? 0, files.count, output))
    }
}

/// Writes a line to standard error (progress and warnings keep standard output for the summary).
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
