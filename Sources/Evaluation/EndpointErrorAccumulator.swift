// DynamicStereo evaluation/utils/eval_utils.py: eval_endpoint_error_sequence, fed one frame at a time
//
// Dimension letters: T frames, H rows, W columns; every frame here is one [H, W] row-major Float array.
//
// What the reference computes, for prediction x, ground truth y and mask m (all [T, 1, H, W], after the crop):
//   x and y are zeroed where m is not set (and y's NaNs are zeroed);
//   EPE[t]  = sqrt(m[t] * (x[t] - y[t])^2)                                      T maps
//   TEPE[t] = sqrt(m[t] * m[t+1] * ((x[t] - x[t+1]) - (y[t] - y[t+1]))^2)        T - 1 maps
// and for each of the two error videos: N = the number of pixels whose error is not exactly 0,
//   mean = (sum of the errors) / N,  bad_k = 100 * (pixels with error > k) / N,  k in 0.5, 1, 2, 3;
// with N = 0 both are 0 (the reference divides a zero sum by a clamped 1e-5).
// So a pixel the prediction hits exactly is in no denominator, and the temporal error of a pixel needs ground
// truth in both of its frames. Per-pixel errors are float32 as the reference's are, so a pixel close to a
// threshold lands on the same side; only the sum is kept in Double (the reference sums float32 in its own
// order, which moves the mean by far less than the 1e-5 relative the golden test allows).

/// One of the reference's two error videos (end-point error or its temporal version), summed as it streams.
public struct ErrorSummary: Equatable, Sendable {
    /// The reference's bad-pixel thresholds in pixels, in the order of `over`.
    public static let thresholds: [Float] = [0.5, 1, 2, 3]
    /// The metric names' threshold spellings (`bad_0.5px` ...), in the order of `thresholds`.
    public static let thresholdNames = ["0.5", "1", "2", "3"]

    /// Sum of every pixel's error.
    public private(set) var sum: Double = 0
    /// Pixels whose error is not 0: the reference's denominator.
    public private(set) var nonZero = 0
    /// Pixels whose error exceeds each threshold.
    public private(set) var over = [Int](repeating: 0, count: ErrorSummary.thresholds.count)

    public init() {}

    /// The mean error over the pixels with a non-zero error (0 when there are none).
    public var mean: Double { nonZero > 0 ? sum / Double(nonZero) : 0 }

    /// The percentage of pixels with a non-zero error whose error exceeds `thresholds[index]`.
    public func badPercent(_ index: Int) -> Double {
        nonZero > 0 ? 100 * Double(over[index]) / Double(nonZero) : 0
    }

    mutating func add(_ error: Float) {
        guard error != 0 else { return }
        sum += Double(error)
        nonZero += 1
        for (index, threshold) in Self.thresholds.enumerated() where error > threshold {
            over[index] += 1
        }
    }
}

/// The reference's metrics of one sequence, under its names.
public struct EndpointErrorMetrics: Equatable, Sendable {
    /// End-point error of each frame against its ground truth.
    public var endpoint: ErrorSummary
    /// Temporal end-point error: the change of the prediction from frame to frame against the ground truth's.
    public var temporal: ErrorSummary
    /// Frames evaluated, and their size once cropped.
    public var frames: Int
    public var width: Int
    public var height: Int

    /// The ten metrics in the reference's naming (`disp_epe_mean`, `disp_epe_bad_0.5px`, ...,
    /// `disp_temp_epe_bad_3px`), end-point error first.
    public var namedValues: [(name: String, value: Double)] {
        var values: [(name: String, value: Double)] = []
        for (prefix, summary) in [("disp_epe", endpoint), ("disp_temp_epe", temporal)] {
            values.append(("\(prefix)_mean", summary.mean))
            for (index, name) in ErrorSummary.thresholdNames.enumerated() {
                values.append(("\(prefix)_bad_\(name)px", summary.badPercent(index)))
            }
        }
        return values
    }
}

/// Computes `eval_endpoint_error_sequence` frame by frame: it keeps the previous frame's masked prediction,
/// ground truth and mask for the temporal error, and nothing else, so a video of any length costs two frames.
public struct EndpointErrorAccumulator {
    /// The frames' size before the crop, and the border dropped on each side.
    public let width: Int
    public let height: Int
    public let crop: Int
    public private(set) var endpoint = ErrorSummary()
    public private(set) var temporal = ErrorSummary()
    public private(set) var frames = 0

    /// The previous frame after the crop: x and y zeroed outside the mask, and the mask.
    private var previous: (prediction: [Float], truth: [Float], mask: [Bool])?

    /// Throws `badCrop` when `crop` is negative or leaves no pixel (the reference refuses a crop of more than
    /// half the shorter side and returns zeros for exactly half; here both are errors).
    public init(width: Int, height: Int, crop: Int = 0) throws {
        precondition(width > 0 && height > 0, "an accumulator needs a non-empty frame")
        guard crop >= 0, 2 * crop < min(width, height) else {
            throw EvaluationError.badCrop(crop: crop, width: width, height: height)
        }
        self.width = width
        self.height = height
        self.crop = crop
    }

    /// The metrics of the frames added so far.
    public var metrics: EndpointErrorMetrics {
        EndpointErrorMetrics(endpoint: endpoint, temporal: temporal, frames: frames,
                             width: width - 2 * crop, height: height - 2 * crop)
    }

    /// Adds the next frame. `prediction` and `groundTruth` are [H, W]; a non-finite ground-truth value means no
    /// ground truth there; `valid` ([H, W], or nil for all true) removes further pixels. Throws
    /// `nonFinitePrediction` for a prediction that is not a number inside the crop.
    public mutating func add(prediction: [Float], groundTruth: [Float], valid: [Bool]?) throws {
        let pixels = width * height
        precondition(prediction.count == pixels && groundTruth.count == pixels && (valid?.count ?? pixels) == pixels,
                     "frames must be \(width)x\(height)")
        let croppedWidth = width - 2 * crop, croppedHeight = height - 2 * crop
        let count = croppedWidth * croppedHeight
        var x = [Float](repeating: 0, count: count)
        var y = [Float](repeating: 0, count: count)
        var mask = [Bool](repeating: false, count: count)
        let all = [Bool](repeating: true, count: valid == nil ? pixels : 0)
        // One pass over the cropped frame: mask, zeroing, the end-point error, and (with a previous frame)
        // the temporal error; the whole cost of an evaluation is these two plain loops.
        try prediction.withUnsafeBufferPointer { p in
            try groundTruth.withUnsafeBufferPointer { g in
                try (valid ?? all).withUnsafeBufferPointer { v in
                    for row in 0..<croppedHeight {
                        for column in 0..<croppedWidth {
                            // source < H * W: row + crop < H and column + crop < W.
                            let source = (row + crop) * width + column + crop
                            let target = row * croppedWidth + column
                            guard p[source].isFinite else {
                                throw EvaluationError.nonFinitePrediction(frame: frames, x: column + crop, y: row + crop)
                            }
                            let inMask = v[source] && g[source].isFinite
                            mask[target] = inMask
                            guard inMask else { continue }
                            x[target] = p[source]
                            y[target] = g[source]
                            let difference = x[target] - y[target]
                            endpoint.add((difference * difference).squareRoot())
                        }
                    }
                }
            }
        }
        if let previous {
            for index in 0..<count where previous.mask[index] && mask[index] {
                // The reference's grouping: (x[t] - x[t+1]) - (y[t] - y[t+1]), each step rounded to float32.
                let change = (previous.prediction[index] - x[index]) - (previous.truth[index] - y[index])
                temporal.add((change * change).squareRoot())
            }
        }
        previous = (x, y, mask)
        frames += 1
    }
}
