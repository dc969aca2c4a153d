// DynamicStereo forward_batch_test and utils.py's InputPadder: whole videos through sliding windows.
import Foundation
import Checkpoint
import Media
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

/// Disparity for whole stereo videos: loads the network once, then runs videos through sliding windows.
public final class StereoVideoEstimator: @unchecked Sendable {
    public let network: DynamicStereoNetwork

    public init(network: DynamicStereoNetwork) {
        self.network = network
    }

    /// Loads a PyTorch checkpoint (`dynamic_stereo_sf.pth`, `dynamic_stereo_dr_sf.pth` or one in their format).
    public convenience init(checkpoint: URL) throws {
        let stateDict = try StateDict.load(checkpoint).floatTensors()
        try self.init(network: DynamicStereoNetwork(stateDict: stateDict))
    }

    /// Checks the parameters with the rules every surface shares (`InferenceParameters`), worded for `surface`.
    public static func validate(iters: Int, kernelSize: Int, surface: ParameterSurface = .commandLine) throws {
        do {
            try InferenceParameters(iters: iters, kernelSize: kernelSize).validate()
        } catch {
            throw InferenceError.invalidParameter(error.message(for: surface))
        }
    }

    /// The final disparity |flow| of every output frame, [T', H, W] (T' = T except with odd kernel sizes, where
    /// the reference's windows repeat frames; `InferenceWindow.outputFrames` names them).
    public func estimate(left: [RGBImage], right: [RGBImage], iters: Int = 20, kernelSize: Int = 20,
                         progress: (InferenceProgress) -> Void = { _ in },
                         isCancelled: () -> Bool = { false }) throws -> Tensor {
        try Self.validate(iters: iters, kernelSize: kernelSize)
        guard !left.isEmpty || !right.isEmpty else { throw InferenceError.noFrames }
        guard left.count == right.count else { throw InferenceError.frameCountMismatch(left: left.count, right: right.count) }
        let (height, width) = (left[0].height, left[0].width)
        for i in 0..<left.count {
            let (l, r) = (left[i], right[i])
            if l.width != r.width || l.height != r.height || l.width != width || l.height != height {
                throw InferenceError.frameSizeMismatch(frame: i, left: "\(l.width)x\(l.height)", right: "\(r.width)x\(r.height)")
            }
        }
        guard height >= 1, width >= 1 else { throw InferenceError.invalidParameter("frames are empty (\(width)x\(height))") }

        let windows = InferenceWindow.plan(frames: left.count, kernelSize: kernelSize)
        let total = windows.reduce(0) { $0 + $1.keep.count }
        let padder = InputPadder(height: height, width: width)
        var outputs: [Tensor] = []
        var done = 0
        for (index, window) in windows.enumerated() where !window.keep.isEmpty {
            let range = window.start..<(window.start + window.length)
            let l = padder.pad(Self.tensor(Array(left[range])))
            let r = padder.pad(Self.tensor(Array(right[range])))
            let result = try network.forward(left: l, right: r, iters: iters, isCancelled: isCancelled)
            let disparity = padder.unpad(result.flow).map { abs($0) }      // [length, 1, height, width]
            outputs.append(disparity.slice(window.keep))
            done += window.keep.count
            progress(InferenceProgress(window: index + 1, windows: windows.count, framesDone: done, framesTotal: total))
        }
        return Tensor.stack(outputs).reshaped([total, height, width])
    }

    /// Frames as [T, 3, H, W] float32 with values 0...255.
    static func tensor(_ images: [RGBImage]) -> Tensor {
        let (h, w) = (images[0].height, images[0].width)
        let plane = h * w
        return Tensor(shape: [images.count, 3, h, w]) { out in
            for (t, image) in images.enumerated() {
                image.pixels.withUnsafeBufferPointer { px in
                    for c in 0..<3 {
                        let base = (t * 3 + c) * plane
                        for p in 0..<plane { out[base + p] = Float(px[p * 3 + c]) }
                    }
                }
            }
        }
    }
}
