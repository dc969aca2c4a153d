// What can go wrong reading a prediction, its ground truth and a validity mask, each case naming the file at fault.

/// Errors of the evaluation module. `description` is one line a user can act on; the CLI prints it and exits 1.
public enum EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A path that does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// A prediction folder or archive without a `disparity.npy`.
    case noPrediction(source: String)
    /// A ground-truth folder or archive without a single disparity frame.
    case noFrames(source: String)
    /// A file that is not a disparity in any supported form; `reason` says what it is instead.
    case notDisparity(file: String, reason: String)
    /// A .npy file whose header or contents do not fit what it is used for.
    case badNPY(file: String, reason: String)
    /// Two frames of one folder or archive whose names differ only in their extension.
    case duplicateFrame(source: String, name: String)
    /// A ground-truth frame in another format than the first one.
    case mixedFormats(source: String, frame: String, format: String, firstFrame: String, firstFormat: String)
    /// The inputs disagree on the number of frames.
    case frameCountMismatch(what: String, expected: Int, actual: Int)
    /// An input frame of another size than the prediction's frames (sizes as width x height).
    case frameSizeMismatch(what: String, frame: String, width: Int, height: Int, expectedWidth: Int, expectedHeight: Int)
    /// A validity mask holding something other than 0 and 1.
    case maskNotBoolean(file: String, value: Double)
    /// A predicted disparity that is not a finite number (the reference's sums would all become NaN).
    case nonFinitePrediction(frame: Int, x: Int, y: Int)
    /// A crop that is negative or leaves no pixel of the frame.
    case badCrop(crop: Int, width: Int, height: Int)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)"
        case let .noPrediction(source):
            return "no disparity.npy in \(source)"
        case let .noFrames(source):
            return "no disparity frames (.pfm or .png files) in \(source)"
        case let .notDisparity(file, reason):
            return "\(file) is not a disparity: \(reason)"
        case let .badNPY(file, reason):
            return "\(file): \(reason)"
        case let .duplicateFrame(source, name):
            return "\(source) has two frames named \(name)"
        case let .mixedFormats(source, frame, format, firstFrame, firstFormat):
            return "\(source): frame \(frame) is \(format) but \(firstFrame) is \(firstFormat)"
        case let .frameCountMismatch(what, expected, actual):
            return "\(what) has \(actual) frames, the prediction has \(expected)"
        case let .frameSizeMismatch(what, frame, width, height, expectedWidth, expectedHeight):
            return "\(what) frame \(frame) is \(width)x\(height), the prediction's frames are \(expectedWidth)x\(expectedHeight)"
        case let .maskNotBoolean(file, value):
            return "\(file) holds \(value); a validity mask holds only 0 and 1 (or false and true)"
        case let .nonFinitePrediction(frame, x, y):
            return "the prediction's frame \(frame) has a non-finite disparity at x=\(x), y=\(y)"
        case let .badCrop(crop, width, height):
            return crop < 0
                ? "--crop must not be negative (got \(crop))"
                : "--crop \(crop) leaves no pixel of a \(width)x\(height) frame"
        }
    }
}
