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

/// How far a video has come, reported after every window.
public struct InferenceProgress: Equatable, Sendable {
    public let window: Int
    public let windows: Int
    public let framesDone: Int
    public let framesTotal: Int
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

    /// The final disparity |flow| of every output frame of a video of `frames` frames of `width` x `height`,
    /// [T', H, W] (T' = T except with odd kernel sizes, where the reference's windows repeat frames;
    /// `InferenceWindow.outputFrames` names them).
    ///
    /// `window(range)` supplies frames `range` of both views as [range.count, 3, H, W] with values 0...255; it is
    /// asked once per window, so only one window's frames are tensors at a time.
    public func estimate(frames: Int, height: Int, width: Int, iters: Int = 20, kernelSize: Int = 20,
                         window load: (Range<Int>) throws -> (left: Tensor, right: Tensor),
                         progress: (InferenceProgress) -> Void = { _ in },
                         isCancelled: () -> Bool = { false }) throws -> Tensor {
        try Self.validate(iters: iters, kernelSize: kernelSize)
        guard frames > 0 else { throw InferenceError.noFrames }
        guard height >= 1, width >= 1 else { throw InferenceError.invalidParameter("frames are empty (\(width)x\(height))") }

        let windows = InferenceWindow.plan(frames: frames, kernelSize: kernelSize)
        let total = windows.reduce(0) { $0 + $1.keep.count }
        let padder = InputPadder(height: height, width: width)
        var outputs: [Tensor] = []
        var done = 0
        for (index, window) in windows.enumerated() where !window.keep.isEmpty {
            let range = window.start..<(window.start + window.length)
            let (left, right) = try load(range)
            let expected = [range.count, 3, height, width]
            precondition(left.shape == expected && right.shape == expected,
                         "estimate: window \(range) came as \(left.shape) and \(right.shape), not \(expected)")
            let result = try network.forward(left: padder.pad(left), right: padder.pad(right), iters: iters,
                                             isCancelled: isCancelled)
            let disparity = padder.unpad(result.flow).map { abs($0) }      // [length, 1, height, width]
            outputs.append(disparity.slice(window.keep))
            done += window.keep.count
            progress(InferenceProgress(window: index + 1, windows: windows.count, framesDone: done, framesTotal: total))
        }
        return Tensor.stack(outputs).reshaped([total, height, width])
    }
}
