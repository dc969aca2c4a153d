import TensorKernels
import TestSupport
import XCTest

/// The separable area resize against its plain form, and half-pixel bilinear against PyTorch's values.
final class ImageResamplingTests: XCTestCase {
    func testAreaResizeMatchesThePlainKernelOnAwkwardShapes() {
        var generator = SeededGenerator(seed: 15)
        let shapes: [([Int], Int, Int)] = [
            ([1, 3, 70, 260], 33, 123),   // non-integer ratios both ways
            ([2, 1, 64, 256], 32, 128),   // exactly half
            ([1, 2, 5, 7], 5, 7),         // unchanged
            ([1, 1, 9, 1], 4, 1),         // one column
            ([1, 1, 3, 11], 1, 1),        // everything into one pixel
        ]
        for (shape, ho, wo) in shapes {
            let x = Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in Float.random(in: 0...255, using: &generator) })
            let fast = resizeArea(x, height: ho, width: wo), plain = resizeAreaReference(x, height: ho, width: wo)
            XCTAssertEqual(fast.shape, [shape[0], shape[1], ho, wo])
            let worst = zip(fast.data, plain.data).map { abs($0 - $1) }.max() ?? 0
            // float32 sums of up to 64 terms of size 255 against a float64 sum: a few 1e-5.
            XCTAssertLessThan(worst, 1e-3, "\(shape) -> \(ho)x\(wo): max difference \(worst)")
        }
        // Averaging keeps a constant image constant and preserves the mean exactly for whole blocks.
        let constant = resizeArea(Tensor(shape: [1, 1, 10, 10], repeating: 3), height: 3, width: 7)
        XCTAssertTrue(constant.data.allSatisfy { abs($0 - 3) < 1e-5 })
    }

    func testHalfPixelBilinearMatchesPyTorch() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0., 1.]]]]), size=(1, 4), mode="bilinear",
        // align_corners=False) is [0, 0.25, 0.75, 1].
        let up = resizeBilinearHalfPixel(Tensor(shape: [1, 1, 1, 2], data: [0, 1]), height: 1, width: 4)
        XCTAssertEqual(up.data, [0, 0.25, 0.75, 1])
        // Size (1, 3) from [0, 1, 2]: unchanged; size (1, 6): [0, 0.25, 0.75, 1.25, 1.75, 2].
        XCTAssertEqual(resizeBilinearHalfPixel(Tensor(shape: [1, 1, 1, 3], data: [0, 1, 2]), height: 1, width: 3).data, [0, 1, 2])
        XCTAssertEqual(resizeBilinearHalfPixel(Tensor(shape: [1, 1, 1, 3], data: [0, 1, 2]), height: 1, width: 6).data,
                       [0, 0.25, 0.75, 1.25, 1.75, 2])
    }
}
