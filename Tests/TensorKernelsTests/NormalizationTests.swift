import XCTest
@testable import TensorKernels

/// The fused, in-place instance normalisation against the plain `instanceNorm` chain.
final class NormalizationTests: XCTestCase {
    /// Planes shorter than the eight partial sums, not a multiple of eight, one pixel, and a large offset
    /// (mean far from zero, where a one-pass variance would lose digits).
    func testFusedInstanceNormMatchesPlainChainOnAwkwardShapes() {
        for (index, (shape, offset)) in [([1, 1, 1, 1], Float(0)), ([2, 3, 1, 7], 0), ([1, 2, 5, 9], 0), ([3, 4, 13, 11], 1000),
                                ([1, 2, 64, 48], -3)].enumerated() {
            let x = random(shape, seed: UInt64(31 + index)).map { 2 * $0 + offset }
            let residual = random(shape, seed: UInt64(61 + index))
            for (withResidual, relu) in [(false, false), (false, true), (true, true), (true, false)] {
                var expected = instanceNorm(x)
                if withResidual { expected = expected + residual }
                if relu { expected = expected.relu() }
                var got = x
                formInstanceNorm(&got, adding: withResidual ? residual : nil, relu: relu)
                let (worst, at) = got.maxAbsDifference(expected)
                // Both normalise with double statistics; only their summation order differs, so the outputs
                // (O(1)) agree to a float ulp or two.
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(shape) offset \(offset) residual \(withResidual) relu \(relu): "
                                         + "\(worst) at \(got.position(of: at))")
            }
        }
    }
}
