// The streaming accumulator against a plain whole-video transcription of the reference's arithmetic.
import Evaluation
import TestSupport
import XCTest

final class EndpointErrorAccumulatorTests: XCTestCase {
    /// The counts and sums `eval_endpoint_error_sequence` works from, computed the reference's way: whole
    /// [T, H, W] float32 arrays, cropped, zeroed by the thresholded mask, NaNs of y zeroed, errors as
    /// sqrt(mask * diff^2) in float32, the temporal mask the product of neighbouring frames' masks. The sum is
    /// taken in Double in pixel order, so it must match exactly; float32 summation is the golden test's part.
    struct PlainReference {
        var nonZero = [0, 0]
        var over = [[0, 0, 0, 0], [0, 0, 0, 0]]
        var sum: [Double] = [0, 0]

        init(x input: [Float], y truth: [Float], mask full: [Float], frames: Int, height: Int, width: Int, crop: Int) {
            let h = height - 2 * crop, w = width - 2 * crop
            func cropped(_ a: [Float]) -> [Float] {
                var out: [Float] = []
                for t in 0..<frames { for r in crop..<(height - crop) { for c in crop..<(width - crop) {
                    out.append(a[(t * height + r) * width + c])
                } } }
                return out
            }
            let mask = cropped(full)
            let binary = mask.map { $0 > 0.5 ? Float(1) : 0 }
            let x = zip(cropped(input), binary).map { $0 * $1 }
            let y = zip(cropped(truth), binary).map { $0 * $1 }.map { $0.isNaN ? 0 : $0 }
            var errors: [[Float]] = [[], []]
            for i in 0..<(frames * h * w) {
                let d = x[i] - y[i]
                errors[0].append((mask[i] * (d * d)).squareRoot())
            }
            for t in 0..<max(0, frames - 1) {
                for p in 0..<(h * w) {
                    let a = t * h * w + p, b = (t + 1) * h * w + p
                    let d = (x[a] - x[b]) - (y[a] - y[b])
                    errors[1].append((mask[a] * mask[b] * (d * d)).squareRoot())
                }
            }
            for kind in 0..<2 {
                for e in errors[kind] {
                    sum[kind] += Double(e)
                    if e != 0 { nonZero[kind] += 1 }
                    for (k, threshold) in ErrorSummary.thresholds.enumerated() where e > threshold { over[kind][k] += 1 }
                }
            }
        }
    }

    /// A video with every awkward case: exact hits (error 0, in no denominator), errors of exactly 0.5, 1, 2 and
    /// 3 px (not "bad": the reference's test is strictly greater), NaN and inf ground truth, a random mask.
    func makeVideo(frames: Int, height: Int, width: Int, seed: UInt64)
        -> (prediction: [Float], truth: [Float], valid: [Bool]) {
        var random = SeededGenerator(seed: seed)
        let count = frames * height * width
        var prediction = [Float](), truth = [Float](), valid = [Bool]()
        for _ in 0..<count {
            var g = Float(random.below(160)) / 8
            switch random.below(20) {
            case 0: g = .nan
            case 1: g = .infinity
            default: break
            }
            let offsets: [Float] = [0, 0.5, -0.5, 1, -1, 2, -2, 3, -3]
            let p: Float = random.below(2) == 0
                ? (g.isFinite ? g : 4) + offsets[random.below(offsets.count)]
                : random.uniform(0, 24)
            truth.append(g)
            prediction.append(p)
            valid.append(random.below(5) != 0)
        }
        return (prediction, truth, valid)
    }

    func testStreamingMatchesThePlainReferenceOnAwkwardShapes() throws {
        for (frames, height, width, crop) in [(4, 9, 13, 0), (4, 9, 13, 2), (1, 7, 5, 0), (6, 1, 17, 0), (3, 70, 260, 3)] {
            let (prediction, truth, valid) = makeVideo(frames: frames, height: height, width: width,
                                                        seed: UInt64(frames * 1000 + height * 10 + crop))
            var accumulator = try EndpointErrorAccumulator(width: width, height: height, crop: crop)
            let pixels = height * width
            for t in 0..<frames {
                let range = t * pixels..<(t + 1) * pixels
                try accumulator.add(prediction: Array(prediction[range]), groundTruth: Array(truth[range]),
                                    valid: Array(valid[range]))
            }
            // The reference is handed the combined mask: --valid and the ground truth's own gaps.
            let mask = zip(valid, truth).map { $0 && $1.isFinite ? Float(1) : 0 }
            let reference = PlainReference(x: prediction, y: truth, mask: mask, frames: frames, height: height,
                                           width: width, crop: crop)
            let shape = "\(frames)x\(height)x\(width) crop \(crop)"
            for (kind, summary) in [accumulator.endpoint, accumulator.temporal].enumerated() {
                XCTAssertEqual(summary.nonZero, reference.nonZero[kind], "\(shape) kind \(kind)")
                XCTAssertEqual(summary.over, reference.over[kind], "\(shape) kind \(kind)")
                XCTAssertEqual(summary.sum, reference.sum[kind], "\(shape) kind \(kind)")
            }
            XCTAssertGreaterThan(accumulator.endpoint.nonZero, 0, shape)
            XCTAssertEqual(accumulator.metrics.frames, frames)
            if frames == 1 {
                XCTAssertEqual(accumulator.temporal, ErrorSummary(), "one frame has no temporal error")
            }
        }
    }

    func testThresholdsAreStrictAndExactHitsLeaveTheDenominator() throws {
        var accumulator = try EndpointErrorAccumulator(width: 6, height: 1)
        // Errors 0 (exact), 0.5, 1, 2, 3 and 3.5.
        try accumulator.add(prediction: [10, 10.5, 11, 12, 13, 13.5], groundTruth: [10, 10, 10, 10, 10, 10], valid: nil)
        let epe = accumulator.endpoint
        XCTAssertEqual(epe.nonZero, 5)
        XCTAssertEqual(epe.over, [4, 3, 2, 1])
        XCTAssertEqual(epe.mean, (0.5 + 1 + 2 + 3 + 3.5) / 5)
        let names = accumulator.metrics.namedValues
        XCTAssertEqual(names.map(\.name), [
            "disp_epe_mean", "disp_epe_bad_0.5px", "disp_epe_bad_1px", "disp_epe_bad_2px", "disp_epe_bad_3px",
            "disp_temp_epe_mean", "disp_temp_epe_bad_0.5px", "disp_temp_epe_bad_1px", "disp_temp_epe_bad_2px",
            "disp_temp_epe_bad_3px",
        ])
        XCTAssertEqual(names[1].value, 80)
        XCTAssertEqual(names[4].value, 20)
    }

    /// The temporal error needs ground truth in both frames of a pair, and measures the change of the error.
    func testTemporalErrorUsesBothFramesMasks() throws {
        var accumulator = try EndpointErrorAccumulator(width: 3, height: 1)
        // Pixel 0: constant error 1 in both frames -> temporal 0. Pixel 1: error 0 then 2 -> temporal 2.
        // Pixel 2: no ground truth in the second frame -> no temporal error.
        try accumulator.add(prediction: [6, 5, 5], groundTruth: [5, 5, 5], valid: nil)
        try accumulator.add(prediction: [8, 7, 9], groundTruth: [7, 5, .nan], valid: nil)
        XCTAssertEqual(accumulator.temporal.nonZero, 1)
        XCTAssertEqual(accumulator.temporal.sum, 2)
        XCTAssertEqual(accumulator.temporal.over, [1, 1, 0, 0])
        // The mask removes a pixel from both error kinds.
        try accumulator.add(prediction: [9, 9, 9], groundTruth: [1, 1, 1], valid: [false, true, false])
        XCTAssertEqual(accumulator.endpoint.nonZero, 1 + 2 + 1)
        XCTAssertEqual(accumulator.temporal.nonZero, 1 + 1)
    }

    func testNoGroundTruthAtAllGivesZeros() throws {
        var accumulator = try EndpointErrorAccumulator(width: 2, height: 2)
        for _ in 0..<3 {
            try accumulator.add(prediction: [1, 2, 3, 4], groundTruth: [.nan, .infinity, -.infinity, .nan], valid: nil)
        }
        XCTAssertTrue(accumulator.metrics.namedValues.allSatisfy { $0.value == 0 }, "\(accumulator.metrics.namedValues)")
    }

    func testNonFinitePredictionInsideTheCropIsRefusedOutsideIgnored() throws {
        var accumulator = try EndpointErrorAccumulator(width: 4, height: 4, crop: 1)
        var frame = [Float](repeating: 1, count: 16)
        frame[0] = .nan  // in the border: dropped by the crop, as the reference drops it
        try accumulator.add(prediction: frame, groundTruth: [Float](repeating: 1, count: 16), valid: nil)
        frame[2 * 4 + 1] = .infinity
        XCTAssertThrowsError(try accumulator.add(prediction: frame, groundTruth: [Float](repeating: 1, count: 16), valid: nil)) {
            XCTAssertEqual($0 as? EvaluationError, .nonFinitePrediction(frame: 1, x: 1, y: 2))
        }
    }

    func testCropMustLeaveAPixel() {
        XCTAssertThrowsError(try EndpointErrorAccumulator(width: 10, height: 6, crop: 3)) {
            XCTAssertEqual($0 as? EvaluationError, .badCrop(crop: 3, width: 10, height: 6))
        }
        XCTAssertThrowsError(try EndpointErrorAccumulator(width: 10, height: 6, crop: -1))
        XCTAssertNoThrow(try EndpointErrorAccumulator(width: 10, height: 6, crop: 2))
    }
}
