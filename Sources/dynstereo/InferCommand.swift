// `dynstereo infer`: the network on a local stereo video, no server involved.
import ArgumentParser
import DynamicStereo
import Foundation
import Inference
import Media
import TensorKernels
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
        // Checked whole before anything is written; decoded again a window at a time below. A tar.gz's frames
        // wait in a hidden file in the temporary folder while the run lasts.
        let reader = try StereoReader(input, selection: selection, scratch: FileManager.default.temporaryDirectory)
        for warning in reader.warnings { printError("warning: \(warning)") }
        let (width, height) = (reader.width, reader.height)
        let network = maxSize.map { ResolutionCap(maxSize: $0).networkSize(width: width, height: height) }
            ?? (width: width, height: height)
        let scaled = network != (width, height)
        printError("found \(reader.count) frames of \(width)x\(height)" + (scaled ? ", network at \(network.width)x\(network.height)" : "")
                   + "; loading \(checkpoint)")
        let camera = focalPx.flatMap { focal in
            baselineM.map { StereoCamera(focalPx: focal, baselineM: $0, cxPx: cxPx, cyPx: cyPx, maxDepthM: maxDepthM) }
        }
        let (folder, kinds) = (URL(fileURLWithPath: output), try resultKinds())
        // A video's own rate slowed by the step; frames from folders and tars have none, so --fps or 30.
        let frameRate = reader.sourceFrameRate?.divided(by: frameStep) ?? FrameRate(String(fps ?? 30))!  // validated
        // The MP4s' encoders start while the checkpoint loads on one core, and wait for the second pass; the
        // folder is made only once the checkpoint is taken, so a refused one leaves nothing.
        let videos = try ResultWriter.startVideos(directory: folder, kinds: kinds, frames: reader.count,
                                                  width: width, height: height, frameRate: frameRate)
        let estimator = try StereoVideoEstimator(checkpoint: URL(fileURLWithPath: checkpoint))
        // After loading: the checkpoint's temporaries go back to the system, the network's stay in the heap.
        _ = AllocationPolicy.keepFreedMemory
        let writer = try ResultWriter(directory: folder, kinds: kinds, camera: camera, frames: reader.count,
                                      width: width, height: height, videos: videos)
        // First pass: the windows in order, each frame decoded once and kept while a window still needs it
        // (windows overlap by half), each window's disparity written as it finishes.
        let frames = try reader.pass()
        let window = WindowFrames(frames: frames, networkSize: network)
        let computeStart = Date()
        try estimator.estimate(
            frames: reader.count, height: network.height, width: network.width, iters: iters, kernelSize: kernelSize,
            window: { range in try window.tensors(range) },
            results: { assignment, disparity in
                let full = ResolutionCap.upsample(disparity, width: width, height: height)   // [n, H, W]
                let plane = width * height
                for (k, index) in assignment.frames.enumerated() {
                    try writer.add(name: reader.names[index], disparity: full.data[k * plane..<(k + 1) * plane],
                                   left: try window.left(index))
                }
            },
            progress: { p in printError(InferProgressLine(p, elapsed: Date().timeIntervalSince(computeStart)).text) })

        // Second pass: colour on the video's one scale, from disparity.npy read back, with the left views decoded
        // again when video/ or video.mp4 needs them.
        if writer.needsColor {
            let scale = writer.colorScale
            printError(String(format: "colouring %d frames on one scale, %.2f to %.2f px", reader.count, scale.lower, scale.upper))
        }
        let leftAgain = try writer.needsLeftForColor ? reader.pass(rightToo: false) : nil
        let files = try writer.finish(frameRate: frameRate, left: { try leftAgain?.next()?.left })
        let seconds = Date().timeIntervalSince(started)
        let scale = writer.colorScale
        print(String(format: "%d frames of %dx%d in %.1f s (%.2f s/frame); disparity %.2f to %.2f px; %d files in %@",
                     reader.count, width, height, seconds, seconds / Double(max(1, reader.count)),
                     scale.lower, scale.upper, files.count, output))
    }
}

/// The frames a run's current window needs, decoded once each from a pass in order: a frame stays from the
/// window that first reads it until a window starting after it is asked for, so at most one window's frames
/// (and their network-size copies) are in memory.
final class WindowFrames {
    private let frames: StereoPass
    private let networkSize: (width: Int, height: Int)
    /// Frames `first ..< first + kept.count`.
    private var first = 0
    private var kept: [(left: RGBImage, right: RGBImage, networkLeft: RGBImage, networkRight: RGBImage)] = []

    init(frames: StereoPass, networkSize: (width: Int, height: Int)) {
        self.frames = frames
        self.networkSize = networkSize
    }

    /// Frames `range` of both views at the network's size as [n, 3, h, w]; ranges come in increasing order.
    func tensors(_ range: Range<Int>) throws -> (left: Tensor, right: Tensor) {
        precondition(range.lowerBound >= first && range.lowerBound <= first + kept.count, "windows come in order, touching or overlapping")
        let drop = min(range.lowerBound - first, kept.count)
        kept.removeFirst(drop)
        first += drop
        while first + kept.count < range.upperBound {
            guard let next = try frames.next(), let right = next.right else { preconditionFailure("the reader's frame count") }
            let (w, h) = networkSize
            kept.append((next.left, right, ResolutionCap.downscale(next.left, width: w, height: h),
                         ResolutionCap.downscale(right, width: w, height: h)))
        }
        let window = kept[(range.lowerBound - first)...]
        return (Tensor(rgbFrames: window.map(\.networkLeft)), Tensor(rgbFrames: window.map(\.networkRight)))
    }

    /// The full-size left view of a frame of the current window.
    func left(_ index: Int) throws -> RGBImage {
        precondition(index >= first && index < first + kept.count, "frame \(index) is not in the current window")
        return kept[index - first].left
    }
}

/// One progress line of `infer` on stderr: the figures a job's `progress` reports, with the same ETA rule
/// (the run's own speed, weighed by what each scale's iterations cost, once a window is done).
struct InferProgressLine {
    let text: String

    init(_ p: InferenceProgress, elapsed: Double) {
        var line = "window \(p.window) of \(p.windows), \(p.framesDone)/\(p.framesTotal) frames, "
            + "\(p.windowsDone)/\(p.windows) windows, \(p.iterationsDone)/\(p.iterationsTotal) iterations, "
            + String(format: "%.1f s elapsed, ", elapsed)
        if p.windowsDone > 0, p.costDone > 0 {
            line += String(format: "about %.0f s left", max(0, elapsed / p.costDone * (p.costTotal - p.costDone)))
        } else {
            line += "time left unknown"
        }
        text = line
    }
}

/// Writes a line to standard error (progress and warnings keep standard output for the summary).
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
