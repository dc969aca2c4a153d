// Golden and unit tests of attention.py: position encoding, linear attention, the LoFTR blocks.
@testable import DynamicStereo
import Foundation
import TensorKernels
import XCTest

final class AttentionTests: XCTestCase {
    /// self_attn_blocks.0 of set A: [5, 64, 256] token sets of the left and right views at 1/16.
    ///
    /// Tolerance 1e-4 absolute: values reach 6 with mean 1.2; the float32 linear attention sums 64 tokens and
    /// the linears 256 or 512 terms in another order than PyTorch, a few ulps (1 ulp at 6 is 5e-7) per step.
    func testSelfAttentionBlockMatchesGolden() throws {
        let store = try Golden.formulaWeights(under: ["self_attn_blocks.0"])
        let block = LocalFeatureTransformer(store.root("self_attn_blocks")(0), kind: .self)
        try store.verify()
        let (left, right) = block(try Golden.tensor("A", "self0_in0"), try Golden.tensor("A", "self0_in1"))
        Golden.assertClose(left, try Golden.tensor("A", "self0_out0"), maxAbs: 1e-4, "self0 left")
        Golden.assertClose(right, try Golden.tensor("A", "self0_out1"), maxAbs: 1e-4, "self0 right")
    }

    /// cross_attn_blocks.0 of set A; the right view must attend to the already updated left view.
    /// Same tolerance and reasons as the self-attention block (values reach 6.2).
    func testCrossAttentionBlockMatchesGolden() throws {
        let store = try Golden.formulaWeights(under: ["cross_attn_blocks.0"])
        let block = LocalFeatureTransformer(store.root("cross_attn_blocks")(0), kind: .cross)
        try store.verify()
        let (left, right) = block(try Golden.tensor("A", "cross0_in0"), try Golden.tensor("A", "cross0_in1"))
        Golden.assertClose(left, try Golden.tensor("A", "cross0_out0"), maxAbs: 1e-4, "cross0 left")
        Golden.assertClose(right, try Golden.tensor("A", "cross0_out1"), maxAbs: 1e-4, "cross0 right")
    }

    /// The encoding of a 3 x 5 map with 8 channels, added to two different images, against the formula in double.
    ///
    /// Tolerance 1e-6: the port rounds frequency and angle to float32 as the reference does; at angles up to 5
    /// that moves sin and cos by at most a few 1e-7.
    func testPositionEncodingMatchesTheFormula() {
        let (n, c, h, w) = (2, 8, 3, 5)
        let x = Tensor(shape: [n, c, h, w], data: (0..<(n * c * h * w)).map { Float($0 % 7) - 3 })
        let out = PositionEncodingSine.add(x)
        var worst = 0.0
        for image in 0..<n { for channel in 0..<c { for y in 0..<h { for col in 0..<w {
            let group = channel / 4
            let frequency = exp(Double(2 * group) * -log(10000.0) / Double(c / 2))
            let px = Double(col + 1) * frequency, py = Double(y + 1) * frequency
            let encoding = [sin(px), cos(px), sin(py), cos(py)][channel % 4]
            let index = ((image * c + channel) * h + y) * w + col
            worst = max(worst, abs(Double(out.data[index]) - (Double(x.data[index]) + encoding)))
        }}}}
        XCTAssertLessThan(worst, 1e-6)
        // Channel 0 at the first pixel is sin(1) by the 1-based positions: a zero-based port would give 0.
        XCTAssertEqual(Double(out.data[0] - x.data[0]), sin(1.0), accuracy: 1e-6)
    }

    /// 256 channels on a 4 x 16 map: angles reach 16, where one float32 ulp of the angle is 2e-6.
    func testPositionEncodingAtFullWidth() {
        let pe = PositionEncodingSine.encoding(channels: 256, height: 4, width: 16)
        var worst = 0.0
        for channel in 0..<256 { for y in 0..<4 { for col in 0..<16 {
            let frequency = exp(Double(2 * (channel / 4)) * -log(10000.0) / 128)
            let angle = Double(channel % 4 < 2 ? col + 1 : y + 1) * frequency
            let encoding = channel % 2 == 0 ? sin(angle) : cos(angle)
            worst = max(worst, abs(Double(pe.data[(channel * 4 + y) * 16 + col]) - encoding))
        }}}
        XCTAssertLessThan(worst, 1e-5)
    }

    /// The sgemm formulation against the definition in double on awkward shapes: L ≠ S, odd sizes, 3 heads of 8.
    ///
    /// Tolerance 1e-5: outputs are weighted means of values in [-1, 1]; float32 sums of 11 terms.
    func testLinearAttentionMatchesTheDefinition() {
        let (n, l, s, c, heads) = (2, 7, 11, 24, 3)
        let d = c / heads
        func values(_ count: Int, _ seed: Double) -> [Float] { (0..<count).map { Float(sin(Double($0) * seed)) } }
        let q = Tensor(shape: [n, l, c], data: values(n * l * c, 0.71))
        let k = Tensor(shape: [n, s, c], data: values(n * s * c, 1.33))
        let v = Tensor(shape: [n, s, c], data: values(n * s * c, 0.29))
        let out = linearAttention(queries: q, keys: k, values: v, heads: heads)
        XCTAssertEqual(out.shape, [n, l, c])
        func phi(_ x: Float) -> Double { x > 0 ? Double(x) + 1 : exp(Double(x)) }
        var worst = 0.0
        for batch in 0..<n { for head in 0..<heads { for token in 0..<l {
            var weights = [Double](repeating: 0, count: s)
            for key in 0..<s {
                for i in 0..<d {
                    let channel = head * d + i
                    weights[key] += phi(q.data[(batch * l + token) * c + channel]) * phi(k.data[(batch * s + key) * c + channel])
                }
            }
            let total = weights.reduce(0, +) + 1e-6
            for i in 0..<d {
                let channel = head * d + i
                var sum = 0.0
                for key in 0..<s { sum += weights[key] * Double(v.data[(batch * s + key) * c + channel]) }
                worst = max(worst, abs(Double(out.data[(batch * l + token) * c + channel]) - sum / total))
            }
        }}}
        XCTAssertLessThan(worst, 1e-5)
    }

    /// toTokens puts pixel (y, x) of channel c at token y·w + x, column c; fromTokens undoes it.
    func testTokenLayoutRoundTrips() {
        let (n, c, h, w) = (2, 3, 2, 5)
        let x = Tensor(shape: [n, c, h, w], data: (0..<(n * c * h * w)).map(Float.init))
        let tokens = toTokens(x)
        XCTAssertEqual(tokens.shape, [n, h * w, c])
        // Image 1, channel 2, pixel (1, 3).
        XCTAssertEqual(tokens.data[(1 * h * w + 1 * w + 3) * c + 2], x.data[((1 * c + 2) * h + 1) * w + 3])
        let back = fromTokens(tokens, height: h, width: w)
        XCTAssertEqual(back.shape, x.shape)
        XCTAssertEqual(back.data, x.data)
    }
}
