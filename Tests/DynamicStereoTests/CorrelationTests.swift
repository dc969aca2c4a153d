// Tests of CorrBlock1D (Correlation.swift): the sampler, the volume, the lookup, and set A's 1/4 scale.
@testable import DynamicStereo
import Foundation
import TensorKernels
import TestSupport
import XCTest

final class CorrelationTests: XCTestCase {
    // MARK: independent double-precision references

    /// Linear interpolation written as a sum of tent functions, max(0, 1 - |x - j|) · v[j], over the
    /// taps that exist: the definition of zero-padded linear sampling, sharing no code or formula
    /// with the floor-and-weights form under test.
    static func tentSample(_ values: [Double], at x: Double) -> Double {
        guard x.isFinite else { return 0 }
        var sum = 0.0
        for (j, v) in values.enumerated() {
            sum += max(0, 1 - abs(x - Double(j))) * v
        }
        return sum
    }

    /// The whole lookup in double precision: correlation, pyramid and tent sampling.
    static func referenceLookup(fmap1: Tensor, fmap2: Tensor, flow: Tensor, levels: Int, radius: Int) -> [Double] {
        let (n, c, h, w1) = fmap1.dims4
        let w2 = fmap2.shape[3]
        let taps = 2 * radius + 1
        var out = [Double](repeating: 0, count: n * levels * taps * h * w1)
        for image in 0..<n {
            for y in 0..<h {
                for x1 in 0..<w1 {
                    var line = (0..<w2).map { x2 -> Double in
                        var acc = 0.0
                        for ch in 0..<c {
                            acc += Double(fmap1.data[((image * c + ch) * h + y) * w1 + x1])
                                * Double(fmap2.data[((image * c + ch) * h + y) * w2 + x2])
                        }
                        return acc / Double(c).squareRoot()
                    }
                    let flowIndex = (image * flow.shape[1] * h + y) * w1 + x1
                    let centre = Double(x1) + Double(flow.data[flowIndex])
                    for level in 0..<levels {
                        if level > 0 {
                            let finer = line
                            line = (0..<(finer.count / 2)).map { j -> Double in
                                let pair: Double = finer[2 * j] + finer[2 * j + 1]
                                return pair / 2
                            }
                        }
                        for k in 0..<taps {
                            let x: Double = centre / Double(1 << level) + Double(k - radius)
                            let channel = image * levels * taps + level * taps + k
                            out[(channel * h + y) * w1 + x1] = tentSample(line, at: x)
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: the sampler

    func testSamplerMatchesTentInterpolationIncludingOutOfRangeAndNegative() {
        var random = SeededGenerator(seed: 7)
        let values = (0..<6).map { _ in random.uniform(-1, 1) }
        let xs: [Float] = [-7, -1.5, -1, -0.999, -0.75, -0.25, -0.0, 0, 0.3, 1, 2.5, 3.125, 4.75, 5,
                           5.2, 5.999, 6, 6.5, 100, -100]
        // The float coordinate round trip 2x/(W-1) - 1 and back moves x by a few ulps (|x| <= 100 here),
        // which changes an O(1) result by well under 1e-5.
        let tolerance = 1e-5
        values.withUnsafeBufferPointer { line in
            for x in xs {
                let got = Double(CorrBlock1D.sample(line.baseAddress!, width: values.count, at: x))
                let want = Self.tentSample(values.map(Double.init), at: Double(x))
                XCTAssertEqual(got, want, accuracy: tolerance, "sample at x = \(x)")
            }
            // Between -1 and 0 only tap 0 contributes, with weight 1 - |x|.
            XCTAssertEqual(CorrBlock1D.sample(line.baseAddress!, width: 6, at: -0.25), 0.75 * values[0], accuracy: 1e-6)
            // Past the last tap by less than one column, only the last tap contributes.
            XCTAssertEqual(CorrBlock1D.sample(line.baseAddress!, width: 6, at: 5.5), 0.5 * values[5], accuracy: 1e-6)
            for x: Float in [.nan, .infinity, -.infinity, 1e30, -1e30, 6.0001, -1.0001] {
                XCTAssertEqual(CorrBlock1D.sample(line.baseAddress!, width: 6, at: x), 0, "sample at x = \(x)")
            }
        }
    }

    func testLineOfOneColumnSamplesToZeroLikeTheReference() {
        // grid_sample's normalisation divides by W - 1 = 0; the reference's un-normalised coordinate is
        // then NaN and its tap is masked out, so every sample is zero.
        let one: [Float] = [3.5]
        one.withUnsafeBufferPointer { line in
            for x: Float in [-1, -0.5, 0, 0.5, 2] {
                XCTAssertEqual(CorrBlock1D.sample(line.baseAddress!, width: 1, at: x), 0, "x = \(x)")
            }
        }
    }

    // MARK: the volume

    func testAllPairsMatchesNaiveOnAwkwardShapes() {
        var random = SeededGenerator(seed: 11)
        for (n, c, h, w1, w2) in [(2, 7, 3, 9, 13), (1, 1, 1, 1, 5), (3, 256, 2, 5, 5), (1, 3, 4, 17, 1)] {
            let f1 = random.tensor([n, c, h, w1])
            let f2 = random.tensor([n, c, h, w2])
            let fast = CorrBlock1D.allPairs(f1, f2)
            let naive = CorrBlock1D.allPairsNaive(f1, f2)
            // sgemm's float sums of C products of magnitude < 1, divided by √C, against double sums:
            // the rounding error is a few ulps of O(1) values.
            Golden.assertClose(fast, naive, maxAbs: 1e-5, "all-pairs \([n, c, h, w1, w2])")
        }
    }

    func testHalvingColumnsFloorsOddWidths() {
        let volume = Tensor(shape: [1, 1, 2, 5], data: [1, 3, 5, 7, 100, -2, -4, 0, 8, 100])
        let half = CorrBlock1D.halveColumns(volume)
        XCTAssertEqual(half.shape, [1, 1, 2, 2])
        XCTAssertEqual(half.data, [2, 6, -3, 4])
    }

    // MARK: the lookup

    func testLookupMatchesDoublePrecisionReference() {
        var random = SeededGenerator(seed: 23)
        for (n, c, h, w1, w2, levels, radius) in [(2, 5, 3, 11, 19, 4, 4), (1, 4, 2, 16, 16, 2, 2)] {
            let f1 = random.tensor([n, c, h, w1])
            let f2 = random.tensor([n, c, h, w2])
            // Flows from -25 to +8 push taps off both ends of every level, including negative coordinates.
            var flow = random.tensor([n, 2, h, w1], -25, 8)
            // Channel 1 (vertical) must be ignored: make it absurd.
            for image in 0..<n {
                for i in 0..<(h * w1) { flow.data[(image * 2 + 1) * h * w1 + i] = 1e6 }
            }
            let block = CorrBlock1D(fmap1: f1, fmap2: f2, levels: levels, radius: radius)
            let got = block(flow: flow)
            let taps = 2 * radius + 1
            XCTAssertEqual(got.shape, [n, levels * taps, h, w1])
            let want = Tensor(shape: got.shape,
                              data: Self.referenceLookup(fmap1: f1, fmap2: f2, flow: flow, levels: levels, radius: radius)
                                  .map { Float($0) })
            // O(1) correlations; float sums, pooling and coordinate rounding against double: a few ulps.
            Golden.assertClose(got, want, maxAbs: 2e-5, "lookup \([n, c, h, w1, w2, levels, radius])")
        }
    }

    func testLookupOfNonFiniteFlowIsZeroNotACrash() {
        var random = SeededGenerator(seed: 5)
        let block = CorrBlock1D(fmap1: random.tensor([1, 3, 1, 8]), fmap2: random.tensor([1, 3, 1, 8]))
        var flow = Tensor(shape: [1, 2, 1, 8])
        flow.data[0] = .nan
        flow.data[1] = .infinity
        flow.data[2] = -.infinity
        flow.data[3] = 3e38
        let out = block(flow: flow)
        for k in 0..<36 {
            for x in 0..<4 { XCTAssertEqual(out.data[k * 8 + x], 0, "channel \(k), x \(x)") }
        }
    }

    // MARK: golden data

    func testQuarterScaleCorrelationMatchesReference() throws {
        let left = try Golden.tensor("A", "fnet_out_left")      // [5, 256, 16, 64]
        let right = try Golden.tensor("A", "fnet_out_right")
        let flow = try Golden.tensor("A", "ub04_in_flow")      // [5, 2, 16, 64]
        let expected = try Golden.tensor("A", "ub04_in_corr")  // [5, 36, 16, 64]
        let got = CorrBlock1D(fmap1: left, fmap2: right)(flow: flow)
        // Correlations reach 60, where one float ulp is 3.8e-6; sgemm and the reference's einsum add the
        // 256 products in different orders (about 5 ulps apart here). 1e-4 is some 25 ulps at the top.
        Golden.assertClose(got, expected, maxAbs: 1e-4, "1/4-scale correlation lookup")
    }
}
