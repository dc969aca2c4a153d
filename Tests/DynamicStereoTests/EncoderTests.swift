// Tests of extractor.py's BasicEncoder: against plain reference loops, and against the golden features of set A.
import Checkpoint
@testable import DynamicStereo
import Foundation
import TensorKernels
import XCTest

final class EncoderTests: XCTestCase {
    /// The whole encoder on a tiny odd-sized image against the same network written with the reference
    /// convolution (`conv2dNaive`, double accumulation) and a double-precision instance norm, with weights
    /// looked up by their checkpoint names here rather than through the encoder's own wiring.
    ///
    /// Tolerance 1e-4: features are O(1) (normalised, then a 1x1 conv of 128 inputs); float32 im2col/sgemm
    /// sums of up to 1152 terms differ from double ones by ~1e-6 per stage, and eight normalisations can
    /// amplify that by 1/std, so 1e-4 leaves margin while any wiring error is O(1).
    func testEncoderMatchesPlainReference() throws {
        let store = try Golden.formulaWeights(under: ["fnet"])
        let encoder = BasicEncoder(store.root("fnet"))
        try store.verify()
        let (n, h, w) = (2, 9, 11)
        let image = Tensor(shape: [n, 3, h, w], data: (0..<(n * 3 * h * w)).map { Float(sin(Double($0) * 0.61)) })
        let out = encoder(image)
        XCTAssertEqual(out.shape, [n, 256, 3, 3])

        let weights = Dictionary(uniqueKeysWithValues: try Golden.checkpointKeys()
            .filter { $0.name.hasPrefix("fnet.") }
            .map { ($0.name, FormulaWeights.tensor(name: $0.name, shape: $0.shape)) })
        func conv(_ x: Tensor, _ name: String, stride: Int, padding: Int) -> Tensor {
            conv2dNaive(x, weight: weights[name + ".weight"]!, bias: weights[name + ".bias"]!,
                        stride: (stride, stride), padding: (padding, padding))
        }
        var x = referenceInstanceNorm(conv(image, "fnet.conv1", stride: 2, padding: 3)).relu()
        for (stage, stride) in [(1, 1), (2, 2), (3, 1)] {
            for block in 0..<2 {
                let name = "fnet.layer\(stage).\(block)"
                let s = block == 0 ? stride : 1
                var y = referenceInstanceNorm(conv(x, name + ".conv1", stride: s, padding: 1)).relu()
                y = referenceInstanceNorm(conv(y, name + ".conv2", stride: 1, padding: 1)).relu()
                x = (referenceInstanceNorm(conv(x, name + ".downsample.0", stride: s, padding: 0)) + y).relu()
            }
        }
        let expected = conv(x, "fnet.conv2", stride: 1, padding: 0)
        Golden.assertClose(out, expected, maxAbs: 1e-4, "encoder vs plain reference")
    }

    /// fnet on the five left and the five right frames of set A, batched together as the network runs it,
    /// against the reference's features [5, 256, 16, 64].
    ///
    /// Tolerance 1e-4 absolute: features reach 9 with mean 0.85 (1 ulp at 8 is 9.5e-7). Eight instance norms
    /// and convolutions of up to 1152 terms, summed in another order than PyTorch's, compound rounding to
    /// about 2e-6 on average and 2e-5 at worst here; a wrong stride, padding or missing norm moves features by O(1).
    func testEncoderMatchesGolden() throws {
        let store = try Golden.formulaWeights(under: ["fnet"])
        let encoder = BasicEncoder(store.root("fnet"))
        try store.verify()
        let left = try Golden.frames("A", "left")
        let right = try Golden.frames("A", "right")
        XCTAssertEqual(left.shape, [5, 3, 64, 256])
        let features = encoder(Tensor.stack([left, right]))
        Golden.assertClose(features.slice(0..<5), try Golden.tensor("A", "fnet_out_left"), maxAbs: 1e-4, "fnet left")
        Golden.assertClose(features.slice(5..<10), try Golden.tensor("A", "fnet_out_right"), maxAbs: 1e-4, "fnet right")
    }

    /// Odd sizes round up at each stride-2 step: 13 x 19 gives 4 x 5 features.
    func testEncoderOutputSizeRoundsUp() throws {
        let store = try Golden.formulaWeights(under: ["fnet"])
        let encoder = BasicEncoder(store.root("fnet"))
        let out = encoder(Tensor(shape: [1, 3, 13, 19], repeating: 0.25))
        XCTAssertEqual(out.shape, [1, 256, 4, 5])
        XCTAssert(out.data.allSatisfy { $0.isFinite })
    }

    /// Each ResidualBlock has a downsample projection, also at stride 1: strict loading must take all of them.
    func testEncoderTakesExactlyTheCheckpointTensors() throws {
        let store = try Golden.formulaWeights(under: ["fnet"])
        _ = BasicEncoder(store.root("fnet"))
        XCTAssertNoThrow(try store.verify())
        let extra = try Golden.checkpointKeys().filter { $0.name.hasPrefix("fnet.") }
        var tensors = FormulaWeights.stateDict(extra)
        tensors["fnet.norm1.weight"] = Tensor(shape: [64], repeating: 1)
        let strict = WeightStore(tensors)
        _ = BasicEncoder(strict.root("fnet"))
        XCTAssertThrowsError(try strict.verify()) { error in
            XCTAssert(String(describing: error).contains("unexpected fnet.norm1.weight"), "\(error)")
        }
    }

    /// InstanceNorm2d(affine: false) in double: each (image, channel) plane to zero mean, unit biased variance.
    private func referenceInstanceNorm(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = x.dims4
        let plane = h * w
        var out = x
        for p in 0..<(n * c) {
            let values = (0..<plane).map { Double(x.data[p * plane + $0]) }
            let mean = values.reduce(0, +) / Double(plane)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(plane)
            for i in 0..<plane { out.data[p * plane + i] = Float((values[i] - mean) / (variance + 1e-5).squareRoot()) }
        }
        return out
    }
}
