// Tests of Layers.swift: each layer binds its checkpoint names strictly and computes what PyTorch's layer does,
// whichever kernel it runs on.
@testable import DynamicStereo
import TensorKernels
import TestSupport
import XCTest

final class LayersTests: XCTestCase {
    // Float32 sgemm against double sums of at most 49·4 products of magnitude <= 1.
    private let tolerance: Float = 2e-5

    private func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        guard a.shape == b.shape else { return }
        let (d, i) = a.maxAbsDifference(b)
        XCTAssertLessThanOrEqual(d, tolerance, "\(what): max |diff| \(d) at \(a.position(of: i))", file: file, line: line)
    }

    func testLayersTakeExactlyTheirCheckpointNames() throws {
        var random = SeededGenerator(seed: 11)
        let tensors = [
            "conv.weight": random.tensor([4, 3, 3, 3]), "conv.bias": random.tensor([4]),
            "video.weight": random.tensor([2, 4, 1, 1, 5]), "video.bias": random.tensor([2]),
            "mlp.0.weight": random.tensor([5, 4]),
            "norm.weight": random.tensor([5]), "norm.bias": random.tensor([5]),
        ]
        let store = WeightStore(tensors)
        let w = store.root
        let conv = Conv2d(w("conv"), in: 3, out: 4, kernel: 3)
        let video = Conv3d(w("video"), in: 4, out: 2, kernel: (1, 1, 5))
        let mlp = Linear(w("mlp")(0), in: 4, out: 5, bias: false)
        let norm = LayerNorm(w("norm"), channels: 5)
        XCTAssertNoThrow(try store.verify())
        XCTAssertEqual(conv.weight, tensors["conv.weight"])
        XCTAssertEqual(video.bias, tensors["video.bias"])
        XCTAssertEqual(video.padding.w, 2)
        XCTAssertEqual([mlp.inputs, mlp.outputs], [4, 5])
        XCTAssertNil(mlp.bias)
        XCTAssertEqual(norm.channels, 5)

        // A bias the checkpoint lacks and a kernel of another size are both reported, with the names bound.
        let strict = WeightStore(tensors)
        _ = Linear(strict.root("mlp")(0), in: 4, out: 5)
        _ = Conv2d(strict.root("conv"), in: 3, out: 4, kernel: 5)
        _ = Conv3d(strict.root("video"), in: 4, out: 2, kernel: (1, 1, 5))
        _ = LayerNorm(strict.root("norm"), channels: 5)
        XCTAssertThrowsError(try strict.verify()) { error in
            XCTAssertEqual(Set((error as? WeightLoadingError)?.problems ?? []), [
                .missing(name: "mlp.0.bias", expected: [5]),
                .shapeMismatch(name: "conv.weight", expected: [4, 3, 5, 5], actual: [4, 3, 3, 3]),
            ])
        }
    }

    func testConv2dMatchesTheReferenceOnEveryPath() {
        var random = SeededGenerator(seed: 12)
        // 3x3 stride 1 (tap-shifted), 3x3 stride 2, 7x7 stride 2 and 1x1 (im2col or a plain product).
        for (kernel, stride) in [(3, 1), (3, 2), (7, 2), (1, 1)] {
            let store = WeightStore(["c.weight": random.tensor([4, 3, kernel, kernel]), "c.bias": random.tensor([4])])
            let conv = Conv2d(store.root("c"), in: 3, out: 4, kernel: kernel, stride: stride)
            let x = random.tensor([2, 3, 7, 9])
            let plain = conv2dNaive(x, weight: conv.weight, bias: conv.bias, stride: (stride, stride),
                                    padding: (kernel / 2, kernel / 2))
            assertClose(conv(x), plain, "conv \(kernel)x\(kernel) / \(stride)")
            // Two inputs act as their concatenation, and the ReLU clamps.
            let parts = splitChannels(x, [1, 2])
            assertClose(conv.reluOf(parts), plain.relu(), "relu(conv(cat)) \(kernel)x\(kernel) / \(stride)")
        }
    }

    func testConv3dMatchesTheReferenceWithEveryMethod() {
        var random = SeededGenerator(seed: 13)
        let store = WeightStore(["c.weight": random.tensor([3, 4, 3, 3, 3]), "c.bias": random.tensor([3])])
        let x = random.tensor([4, 4, 5, 6])
        for method in [Conv3d.Method.columns, .box, .tapProducts] {
            let conv = Conv3d(store.root("c"), in: 4, out: 3, kernel: (3, 3, 3), method: method)
            let plain = conv3dNaive(x, weight: conv.weight, bias: conv.bias, padding: (1, 1, 1))
            assertClose(conv(x), plain, "conv3d \(method)")
            assertClose(conv(x, relu: true), plain.relu(), "relu(conv3d) \(method)")
        }
    }

    func testLinearAndLayerNormMatchTheirDefinitions() {
        var random = SeededGenerator(seed: 14)
        let store = WeightStore(["l.weight": random.tensor([3, 4]), "l.bias": random.tensor([3]),
                                 "n.weight": random.tensor([3]), "n.bias": random.tensor([3])])
        let layer = Linear(store.root("l"), in: 4, out: 3)
        let norm = LayerNorm(store.root("n"), channels: 3)
        let x = random.tensor([2, 5, 4])
        let y = layer(x), z = norm(y)
        XCTAssertEqual(y.shape, [2, 5, 3])
        var worst: Float = 0
        for row in 0..<10 {
            let out = (0..<3).map { o in
                (0..<4).reduce(Double(layer.bias!.data[o])) { $0 + Double(layer.weight.data[o * 4 + $1]) * Double(x.data[row * 4 + $1]) }
            }
            let mean = out.reduce(0, +) / 3
            let variance = out.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3
            for o in 0..<3 {
                worst = max(worst, abs(y.data[row * 3 + o] - Float(out[o])))
                let normed = (out[o] - mean) / (variance + 1e-5).squareRoot() * Double(norm.weight.data[o]) + Double(norm.bias.data[o])
                worst = max(worst, abs(z.data[row * 3 + o] - Float(normed)))
            }
        }
        // Sums of 4 products and a 3-value norm: float32 against double stays near 1e-6 (normalised values are
        // O(1) here, 1/std at most a few tens for these random rows).
        XCTAssertLessThan(worst, 1e-4)
    }
}
