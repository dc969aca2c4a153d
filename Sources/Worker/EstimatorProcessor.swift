// The real window: decode its PNG frames, run DynamicStereo on them, and make the rows of the frames it gives.
import DynamicStereo
import Foundation
import Inference
import JobQueue
import Media
import TensorKernels
import VideoIO

/// Runs `StereoVideoEstimator` on one window's frames. A window is at most `kernelSize` frames, which the
/// estimator runs as one network window keeping every frame, exactly as it runs that window of the whole
/// video; the rows of the frames the window gives are kept.
///
/// The estimator's weights are read-only after loading, so one instance serves every slot of a worker.
public final class EstimatorProcessor: JobProcessor {
    private let estimator: StereoVideoEstimator

    public init(estimator: StereoVideoEstimator) {
        self.estimator = estimator
    }

    /// Loads the checkpoint; a wrong checkpoint is an error here, when the worker starts, rather than a
    /// failure of every window it would claim.
    public convenience init(checkpoint: URL) throws {
        self.init(estimator: try StereoVideoEstimator(checkpoint: checkpoint))
    }

    public func process(window: ClaimedWindow, frames: [InputFrame],
                        progress: @escaping (Int, Int) -> Void, isCancelled: @escaping () -> Bool) throws -> [FrameResult] {
        precondition(frames.map(\.index) == Array(window.window.inputFrames), "the window's own frames, in order")
        precondition(frames.count <= window.parameters.kernelSize, "a window is never longer than the kernel")
        var left: [RGBImage] = []
        var right: [RGBImage] = []
        for frame in frames {
            left.append(try Self.decode(frame.left, frame: frame.name, side: "left"))
            right.append(try Self.decode(frame.right, frame: frame.name, side: "right"))
        }
        // `max_size`: the network sees the frames area-averaged down to the cap, and its disparity comes back
        // at the input's size (bilinear, times input width / network width), exactly as `dynstereo infer` does it.
        let (inputWidth, inputHeight) = (left.first?.width ?? 0, left.first?.height ?? 0)
        let network = window.parameters.maxSize.map { ResolutionCap(maxSize: $0).networkSize(width: inputWidth, height: inputHeight) }
            ?? (width: inputWidth, height: inputHeight)
        if network != (inputWidth, inputHeight) {
            left = left.map { ResolutionCap.downscale($0, width: network.width, height: network.height) }
            right = right.map { ResolutionCap.downscale($0, width: network.width, height: network.height) }
        }
        var disparity: Tensor
        do {
            // One network window (the frames are no more than the kernel): every refinement iteration at every
            // scale is reported, the heartbeat stores the latest.
            disparity = try estimator.estimate(left: left, right: right, iters: window.parameters.iters,
                                               kernelSize: window.parameters.kernelSize,
                                               progress: { p in progress(p.iterationsDone, p.iterationsTotal) },
                                               isCancelled: isCancelled)
        } catch let error as InferenceError {
            throw BadJobInput(error.description)
        }
        disparity = ResolutionCap.upsample(disparity, width: inputWidth, height: inputHeight)
        let (count, height, width) = disparity.dims3
        precondition(count == frames.count, "one output per input frame of a single window")
        let kept = window.keptPositions
        let plane = height * width
        let values = Array(disparity.data[kept.lowerBound * plane..<kept.upperBound * plane])
        return try WindowResults.make(window, names: kept.map { frames[$0].name }, disparity: values, height: height, width: width)
    }

    private static func decode(_ data: Data, frame: String, side: String) throws -> RGBImage {
        do {
            return try FrameImage.decodeRGB(data)
        } catch let error as MediaError {
            throw BadJobInput("frame \(frame) (\(side)): \(error)")
        }
    }
}
