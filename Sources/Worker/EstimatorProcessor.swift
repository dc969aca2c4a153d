// The real job: decode the PNG frames, run DynamicStereo, and render the same files as `dynstereo infer`.
import DynamicStereo
import Foundation
import Inference
import JobQueue
import Media
import TensorKernels

/// Runs `StereoVideoEstimator` on a job's frames and returns `ResultFiles.make`'s outputs (disparity.npy,
/// 16-bit disparity PNGs, colour-mapped frames, and depth when the job is calibrated).
///
/// The estimator's weights are read-only after loading, so one instance serves every slot of a worker.
public final class EstimatorProcessor: JobProcessor {
    private let estimator: StereoVideoEstimator

    public init(estimator: StereoVideoEstimator) {
        self.estimator = estimator
    }

    /// Loads the checkpoint; a wrong checkpoint is an error here, when the worker starts, rather than a
    /// failure of every job it would claim.
    public convenience init(checkpoint: URL) throws {
        self.init(estimator: try StereoVideoEstimator(checkpoint: checkpoint))
    }

    public func process(frames: [InputFrame], parameters: JobParameters,
                        progress: @escaping (Int, Int) -> Void, isCancelled: @escaping () -> Bool) throws -> [ResultBlob] {
        var left: [RGBImage] = []
        var right: [RGBImage] = []
        for frame in frames {
            left.append(try Self.decode(frame.left, frame: frame.name, side: "left"))
            right.append(try Self.decode(frame.right, frame: frame.name, side: "right"))
        }
        let disparity: Tensor
        do {
            disparity = try estimator.estimate(left: left, right: right, iters: parameters.iters, kernelSize: parameters.kernelSize,
                                               progress: { progress($0.framesDone, $0.framesTotal) }, isCancelled: isCancelled)
        } catch let error as InferenceError {
            throw BadJobInput(error.description)
        }
        // With odd kernel sizes the windows repeat frames; name each output after its source frame.
        let sources = InferenceWindow.outputFrames(frames: frames.count, kernelSize: parameters.kernelSize)
        do {
            return try ResultFiles.make(disparity: disparity, frameNames: sources.map { frames[$0].name },
                                        left: sources.map { left[$0] }, focalPx: parameters.focalPx, baselineM: parameters.baselineM)
                .map { ResultBlob(path: $0.path, data: $0.data) }
        } catch let error as MediaError {
            throw BadJobInput("cannot render the results: \(error)")
        }
    }

    private static func decode(_ data: Data, frame: String, side: String) throws -> RGBImage {
        do {
            return try PNG.decodeRGB(data)
        } catch let error as MediaError {
            throw BadJobInput("frame \(frame) (\(side)): \(error)")
        }
    }
}
