import XCTest
@testable import TensorKernels

/// The tap-shifted "same" convolutions against the plain loops, where the zero gaps decide the result.
final class BoxConvolutionTests: XCTestCase {
    private var seed: UInt64 = 17

    /// A fresh random tensor on each call, reproducible across runs.
    private func random(_ shape: [Int]) -> Tensor {
        seed += 1
        return TensorKernelsTests.random(shape, seed: seed)
    }

    // Float32 sgemm against double sums of at most 27·7 products of magnitude <= 1.
    private let tolerance: Float = 2e-5

    private func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        guard a.shape == b.shape else { return }
        let (d, i) = a.maxAbsDifference(b)
        XCTAssertLessThanOrEqual(d, tolerance, "\(what): max |diff| \(d) at \(a.position(of: i))", file: file, line: line)
    }

    func test2DMatchesReferenceOnAwkwardShapes() {
        // One image, one row, one column, sizes below the kernel, odd sizes, 70x26-like shapes.
        let cases: [([Int], [Int])] = [
            ([1, 3, 7, 13], [5, 3, 3, 3]), ([3, 2, 1, 5], [4, 2, 3, 3]), ([2, 4, 5, 1], [3, 4, 3, 3]),
            ([2, 3, 7, 26], [6, 3, 3, 3]), ([1, 2, 2, 2], [3, 2, 5, 5]), ([2, 5, 4, 6], [2, 5, 1, 3]),
        ]
        for (xs, ws) in cases {
            let x = random(xs), w = random(ws), b = random([ws[0]])
            let fast = boxConvolution([x], BoxKernel(weight: w, bias: b))
            let plain = conv2dNaive(x, weight: w, bias: b, padding: (ws[2] / 2, ws[3] / 2))
            assertClose(fast, plain, "conv2d \(xs) * \(ws)")
        }
    }

    func test3DMatchesReferenceOnAwkwardShapes() {
        let cases: [([Int], [Int])] = [
            ([1, 3, 4, 5], [4, 3, 3, 3, 3]), ([4, 2, 1, 6], [3, 2, 3, 3, 3]), ([3, 3, 5, 1], [2, 3, 3, 3, 3]),
            ([5, 4, 3, 7], [6, 4, 3, 3, 3]), ([2, 2, 3, 3], [2, 2, 5, 1, 1]), ([3, 2, 4, 4], [2, 2, 1, 1, 5]),
            // Frames fewer than the kernel's temporal reach: taps that see only padding are cut entirely.
            ([2, 3, 2, 3], [2, 3, 5, 3, 3]), ([7, 2, 2, 2], [3, 2, 5, 3, 1]),
        ]
        for (xs, ws) in cases {
            let x = random(xs), w = random(ws), b = random([ws[0]])
            let fast = boxConvolution([x], BoxKernel(weight: w, bias: b))
            let plain = conv3dNaive(x, weight: w, bias: b, padding: (ws[2] / 2, ws[3] / 2, ws[4] / 2))
            assertClose(fast, plain, "conv3d \(xs) * \(ws)")
        }
    }

    func testSeveralInputsActAsTheirConcatenationAndReluClamps() {
        let a = random([3, 2, 5, 6]), b = random([3, 3, 5, 6])
        let w = random([4, 5, 3, 3]), bias = random([4])
        let fast = boxConvolution([a, b], BoxKernel(weight: w, bias: bias), relu: true)
        let plain = conv2dNaive(concatChannels([a, b]), weight: w, bias: bias, padding: (1, 1)).relu()
        assertClose(fast, plain, "concatenated inputs with relu")
        XCTAssertTrue(fast.data.contains(0) && fast.data.allSatisfy { $0 >= 0 }, "relu leaves zeros and no negatives")
    }
}
