import XCTest
@testable import DynamicStereo
import TensorKernels

/// Padding and whole-video inference (window cutting is tested in VideoPlanTests).
final class VideoInferenceTests: XCTestCase {
    func testPadderSplitsLikeTheReference() {
        // Set B: 70x260 padded to 96x288 with (left, right, top, bottom) = (14, 14, 13, 13) per its meta.json.
        let padder = InputPadder(height: 70, width: 260)
        XCTAssertEqual([padder.left, padder.right, padder.top, padder.bottom], [14, 14, 13, 13])
        XCTAssertEqual(InputPadder(height: 64, width: 256), InputPadder(height: 32, width: 32))
        let odd = InputPadder(height: 33, width: 1)
        XCTAssertEqual([odd.left, odd.right, odd.top, odd.bottom], [15, 16, 15, 16])

        let x = Tensor(shape: [1, 1, 2, 3], data: [1, 2, 3, 4, 5, 6])
        let padded = padder.pad(x)
        XCTAssertEqual(padded.shape, [1, 1, 28, 31])
        XCTAssertEqual(padded.data[0], 1)                       // top-left corner replicates (0, 0)
        XCTAssertEqual(padded.data.last, 6)                     // bottom-right replicates (1, 2)
        XCTAssertEqual(padder.unpad(padded), x)
    }

    func testConvexUpsampleMatchesItsDefinition() {
        let (n, h, w, rate) = (2, 3, 4, 4)
        var seed: UInt64 = 7
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(seed >> 40) % 2001 - 1000) / 250
        }
        let flow = Tensor(shape: [n, 2, h, w], data: (0..<(n * 2 * h * w)).map { _ in next() })
        let mask = Tensor(shape: [n, 9 * rate * rate, h, w], data: (0..<(n * 144 * h * w)).map { _ in next() })
        let up = convexUpsample(flow, mask: mask, rate: rate)
        XCTAssertEqual(up.shape, [n, 2, h * rate, w * rate])
        var worst: Double = 0
        for b in 0..<n { for c in 0..<2 { for y in 0..<(h * rate) { for x in 0..<(w * rate) {
            let (cy, cx, i, j) = (y / rate, x / rate, y % rate, x % rate)
            var logits: [Double] = []
            var values: [Double] = []
            for k in 0..<9 {
                logits.append(Double(mask.data[((b * 144 + k * 16 + i * 4 + j) * h + cy) * w + cx]))
                let (yy, xx) = (cy + k / 3 - 1, cx + k % 3 - 1)
                let inside = yy >= 0 && yy < h && xx >= 0 && xx < w
                values.append(inside ? 4 * Double(flow.data[((b * 2 + c) * h + yy) * w + xx]) : 0)
            }
            let peak = logits.max()!
            let e = logits.map { Foundation.exp($0 - peak) }
            let expected = zip(e, values).reduce(0) { $0 + $1.0 * $1.1 } / e.reduce(0, +)
            let got = Double(up.data[((b * 2 + c) * h * rate + y) * w * rate + x])
            worst = max(worst, abs(got - expected))
        }}}}
        // Float32 softmax over 9 terms of magnitude <= 16: rounding stays below 1e-5.
        XCTAssertLessThan(worst, 1e-5)
    }

    func testTimeEmbeddingIsNearestResampled() throws {
        // PyTorch nearest for 5 -> T: source floor(t * 5 / T); for T = 3 that is 0, 1, 3; for T = 8, 0 0 1 1 2 3 3 4.
        let store = WeightStore(try Golden.formulaStateDict())
        let network = DynamicStereoNetwork(store.root)
        let table = network.timeEmbedding.data
        func row(_ i: Int) -> [Float] { Array(table[(i * 256)..<((i + 1) * 256)]) }
        XCTAssertEqual(network.timeEmbedding(frames: 3), [row(0), row(1), row(3)])
        XCTAssertEqual(network.timeEmbedding(frames: 8), [0, 0, 1, 1, 2, 3, 3, 4].map(row))
        XCTAssertEqual(network.timeEmbedding(frames: 5), (0..<5).map(row))
    }
}
