// The whole of `dynstereo evaluate`: a prediction, its ground truth and a mask streamed through the metrics.
import Foundation
import Media

/// What one evaluation found: the metrics, and what was read to get them.
public struct EvaluationReport: Sendable {
    public let metrics: EndpointErrorMetrics
    /// The prediction's frames and their size before the crop.
    public let frames: Int
    public let width: Int
    public let height: Int
    public let crop: Int
    /// How the ground truth was stored: a per-frame format's name, or "NumPy array".
    public let groundTruthFormat: String
    /// Files of the ground-truth folder or archive that were not frames, one line each.
    public let warnings: [String]
}

/// Runs the reference's `eval_endpoint_error_sequence` over files on disk. The prediction, the ground truth and
/// the mask are read one frame at a time, in step; what is held at once is two frames of each (the temporal
/// error's pair), whatever the video's length.
public enum SequenceEvaluation {
    /// `prediction`: a disparity.npy [T, H, W], a folder holding one (an `infer` output), or a tar holding one
    /// (a downloaded result.tar). `groundTruth`: see `GroundTruthFrames`. `valid`: an optional 0/1 .npy
    /// [T, H, W], combined with the ground truth's own missing values. `crop`: pixels dropped on every side.
    public static func run(prediction: URL, groundTruth: URL, valid: URL?, crop: Int) throws -> EvaluationReport {
        let predicted = try openPrediction(prediction)
        let (frames, height, width) = (predicted.frames, predicted.height, predicted.width)
        var accumulator = try EndpointErrorAccumulator(width: width, height: height, crop: crop)

        let truth = try GroundTruthFrames(url: groundTruth)
        guard truth.count == frames else {
            throw EvaluationError.frameCountMismatch(what: "the ground truth \(truth.source)", expected: frames, actual: truth.count)
        }
        let mask = try valid.map { url -> NPYFrames in
            guard try InputKind.of(url) == .npy else {
                throw EvaluationError.badNPY(file: url.lastPathComponent, reason: "not a NumPy .npy file (a validity mask is one)")
            }
            let mask = try NPYFrames(bytes: FileBytes(url: url), name: url.lastPathComponent)
            guard mask.frames == frames else {
                throw EvaluationError.frameCountMismatch(what: "the mask \(mask.name)", expected: frames, actual: mask.frames)
            }
            guard mask.width == width, mask.height == height else {
                throw EvaluationError.frameSizeMismatch(what: "the mask \(mask.name)", frame: "0", width: mask.width,
                                                        height: mask.height, expectedWidth: width, expectedHeight: height)
            }
            return mask
        }

        for _ in 0..<frames {
            let values = try predicted.nextFloats()
            guard let (name, frame) = try truth.next() else {
                preconditionFailure("the ground truth announced \(truth.count) frames")
            }
            guard frame.width == width, frame.height == height else {
                throw EvaluationError.frameSizeMismatch(what: "the ground truth \(truth.source)", frame: name,
                                                        width: frame.width, height: frame.height,
                                                        expectedWidth: width, expectedHeight: height)
            }
            try accumulator.add(prediction: values, groundTruth: frame.values, valid: try mask?.nextMask())
        }
        return EvaluationReport(metrics: accumulator.metrics, frames: frames, width: width, height: height, crop: crop,
                                groundTruthFormat: truth.format?.rawValue ?? "NumPy array", warnings: truth.warnings)
    }

    /// The prediction's disparity.npy, ready to stream: the file itself, the one in a folder, or the first
    /// `disparity.npy` entry of a tar (at its root or in a folder), read from inside the archive.
    static func openPrediction(_ url: URL) throws -> NPYFrames {
        let array: NPYFrames
        switch try InputKind.of(url) {
        case .npy:
            array = try NPYFrames(bytes: FileBytes(url: url), name: url.lastPathComponent)
        case .directory:
            let file = url.appendingPathComponent(ResultFiles.disparityArrayPath)
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw EvaluationError.noPrediction(source: url.lastPathComponent)
            }
            guard try InputKind.of(file) == .npy else {
                throw EvaluationError.badNPY(file: "\(url.lastPathComponent)/\(file.lastPathComponent)", reason: "not a NumPy .npy file (bad magic)")
            }
            array = try NPYFrames(bytes: FileBytes(url: file), name: "\(url.lastPathComponent)/\(file.lastPathComponent)")
        case .other:
            array = try openPrediction(archive: url)
        }
        guard array.element == .float32 || array.element == .float64 else {
            throw EvaluationError.badNPY(file: array.name, reason: "holds \(array.element) values, not disparities (float32 or float64)")
        }
        return array
    }

    private static func openPrediction(archive url: URL) throws -> NPYFrames {
        let name = url.lastPathComponent
        do {
            let reader = try TarReader(url: url)
            let wanted = ResultFiles.disparityArrayPath
            while let entry = try reader.next() {
                guard entry.kind == .file, entry.path == wanted || entry.path.hasSuffix("/" + wanted) else { continue }
                return try NPYFrames(bytes: TarEntryBytes(reader: reader), name: "\(entry.path) in \(name)")
            }
        } catch let error as MediaError {
            throw EvaluationError.notDisparity(file: name, reason: "neither a .npy nor a tar holding disparity.npy (\(error.description))")
        }
        throw EvaluationError.noPrediction(source: name)
    }
}
