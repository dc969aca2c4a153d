// DynamicStereo forward_batch_test and utils.py's InputPadder: whole videos through sliding windows.
import Foundation
import TensorKernels
@_exported import VideoPlan

/// Replicate padding of a window to multiples of 32, split evenly ("sintel" mode), and its inverse.
public struct InputPadder: Equatable {
    public let left: Int, right: Int, top: Int, bottom: Int

    public init(height: Int, width: Int, multiple: Int = 32) {
        let padH = (multiple - height % multiple) % multiple
        let padW = (multiple - width % multiple) % multiple
        (left, right) = (padW / 2, padW - padW / 2)
        (top, bottom) = (padH / 2, padH - padH / 2)
    }

    public func pad(_ x: Tensor) -> Tensor {
        replicatePad(x, left: left, right: right, top: top, bottom: bottom)
    }

    public func unpad(_ x: Tensor) -> Tensor {
        let (_, _, h, w) = x.dims4
        return crop(x, top: top, left: left, height: h - top - bottom, width: w - left - right)
    }
}

/// How far a video has come, reported after every refinement iteration (at every scale) and after every window.
public struct InferenceProgress: Equatable, Sendable {
    /// The window running or just finished, 1-based, of the video's windows (`WindowAssignment.plan`).
    public let window: Int
    public let windows: Int
    /// Windows whose results were handed on.
    public let windowsDone: Int
    /// Input frames whose results were handed on, of all (one result per input frame).
    public let framesDone: Int
    public let framesTotal: Int
    /// Refinement iterations run at every scale, summed over the windows, of all of them.
    public let iterationsDone: Int
    public let iterationsTotal: Int
    /// What those iterations cost, weighed by each scale's pixel count and each window's frame count
    /// (`RefinementSchedule.cost`): the share of the work done is `costDone / costTotal`, which an estimate of
    /// the time left should use rather than the iteration count (an iteration at 1/4 costs 16 at 1/16).
    public let costDone: Double
    public let costTotal: Double

    public init(window: Int, windows: Int, windowsDone: Int, framesDone: Int, framesTotal: Int,
                iterationsDone: Int, iterationsTotal: Int, costDone: Double, costTotal: Double) {
        self.window = window
        self.windows = windows
        self.windowsDone = windowsDone
        self.framesDone = framesDone
        self.framesTotal = framesTotal
        self.iterationsDone = iterationsDone
        self.iterationsTotal = iterationsTotal
        self.costDone = costDone
        self.costTotal = costTotal
    }
}

/// Bad input to the network, as the user should read it.
public enum InferenceError: Error, CustomStringConvertible, Equatable {
    case noFrames
    case frameCountMismatch(left: Int, right: Int)
    case frameSizeMismatch(frame: Int, left: String, right: String)
    case invalidParameter(String)

    public var description: String {
        switch self {
        case .noFrames: return "the video has no frames"
        case let .frameCountMismatch(left, right): return "left has \(left) frames, right has \(right)"
        case let .frameSizeMismatch(frame, left, right): return "frame \(frame): left is \(left), right is \(right)"
        case let .invalidParameter(message): return message
        }
    }
}

/// Disparity for whole stereo videos: holds the network once, then runs videos through sliding windows.
///
/// Frames come in as tensors, one window at a time, from whoever decoded them; reading checkpoints and images
/// is the wiring layer's (the `Inference` module's `init(checkpoint:)` and `estimate(left:right:)`).
public final class StereoVideoEstimator: @unchecked Sendable {
    public let network: DynamicStereoNetwork

    public init(network: DynamicStereoNetwork) {
        self.network = network
    }

    /// Checks the parameters with the rules every surface shares (`InferenceParameters`), worded for `surface`.
    public static func validate(iters: Int, kernelSize: Int, surface: ParameterSurface = .commandLine) throws {
        do {
            try InferenceParameters(iters: iters, kernelSize: kernelSize).validate()
        } catch {
            throw InferenceError.invalidParameter(error.message(for: surface))
        }
    }

    /// Runs a video of `frames` frames of `width` x `height` window by window (`WindowAssignment.plan`: the
    /// reference's windows, one result per input frame, a frame two windows keep taken from the first) and hands
    /// each window's final disparity |flow| to `results` as it is done: [assignment.frames.count, H, W], the
    /// input frames `assignment.frames`, in order. Nothing of a window is kept after `results` returns.
    ///
    /// `window(range)` supplies frames `range` (an assignment's `inputFrames`) of both views as
    /// [range.count, 3, H, W] with values 0...255; it is asked once per window, in order, so only one window's
    /// frames are tensors at a time. `progress` is told after every refinement iteration and every window.
    public func estimate(frames: Int, height: Int, width: Int, iters: Int = 20, kernelSize: Int = 20,
                         window load: (Range<Int>) throws -> (left: Tensor, right: Tensor),
                         results: (WindowAssignment, Tensor) throws -> Void,
                         progress: (InferenceProgress) -> Void = { _ in },
                         isCancelled: () -> Bool = { false }) throws {
        try Self.validate(iters: iters, kernelSize: kernelSize)
        guard frames > 0 else { throw InferenceError.noFrames }
        guard height >= 1, width >= 1 else { throw InferenceError.invalidParameter("frames are empty (\(width)x\(height))") }

        let assignments = WindowAssignment.plan(frames: frames, kernelSize: kernelSize)
        let schedule = RefinementSchedule(iters: iters)
        let costTotal = assignments.reduce(0) { $0 + Double($1.window.length) * schedule.cost }
        let padder = InputPadder(height: height, width: width)
        var (framesDone, iterationsBefore, costBefore) = (0, 0, 0.0)
        for assignment in assignments {
            let range = assignment.inputFrames
            let (left, right) = try load(range)
            let expected = [range.count, 3, height, width]
            precondition(left.shape == expected && right.shape == expected,
                         "estimate: window \(range) came as \(left.shape) and \(right.shape), not \(expected)")
            func report(iterations: Int, windowsDone: Int) {
                progress(InferenceProgress(
                    window: assignment.index + 1, windows: assignments.count, windowsDone: windowsDone,
                    framesDone: framesDone, framesTotal: frames,
                    iterationsDone: iterationsBefore + iterations, iterationsTotal: assignments.count * schedule.iterations,
                    costDone: costBefore + Double(range.count) * schedule.cost(ofFirst: iterations), costTotal: costTotal))
            }
            let result = try network.forward(left: padder.pad(left), right: padder.pad(right), iters: iters,
                                             isCancelled: isCancelled,
                                             iterationDone: { done, _ in report(iterations: done, windowsDone: assignment.index) })
            let disparity = padder.unpad(result.flow).slice(assignment.keptPositions).map { abs($0) }  // [n, 1, H, W]
            try results(assignment, disparity.reshaped([assignment.frames.count, height, width]))
            framesDone += assignment.frames.count
            iterationsBefore += schedule.iterations
            costBefore += Double(range.count) * schedule.cost
            report(iterations: 0, windowsDone: assignment.index + 1)
        }
    }

    /// `estimate(frames:height:width:...)` with every window's result gathered: the disparity of every input
    /// frame, [T, H, W]. For clips; a long video should hand its windows on as they come instead.
    public func estimate(frames: Int, height: Int, width: Int, iters: Int = 20, kernelSize: Int = 20,
                         window load: (Range<Int>) throws -> (left: Tensor, right: Tensor),
                         progress: (InferenceProgress) -> Void = { _ in },
                         isCancelled: () -> Bool = { false }) throws -> Tensor {
        var parts: [Tensor] = []
        try estimate(frames: frames, height: height, width: width, iters: iters, kernelSize: kernelSize, window: load,
                     results: { _, disparity in parts.append(disparity) }, progress: progress, isCancelled: isCancelled)
        return parts.count == 1 ? parts[0] : Tensor.stack(parts)
    }
}
