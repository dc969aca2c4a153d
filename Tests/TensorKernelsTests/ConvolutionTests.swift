import XCTest
@testable import TensorKernels

/// Fast kernels against their plain reference loops on awkward shapes.
final class ConvolutionTests: XCTestCase {
    // Float32 sgemm against double-accumulated loops: sums of up to ~1000 products of magnitude <= 1,
    // so rounding differences stay well under 1e-4.
    private let tolerance: Float = 1e-4

    private func assertClose(_ a: Tensor, _ b: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, file: file, line: line)
        let (d, i) = a.maxAbsDifference(b)
        XCTAssertLessThanOrEqual(d, tolerance, "max |diff| \(d) at \(a.position(of: i))", file: file, line: line)
    }

    func testConv2dMatchesReferenceOnOddShapes() {
        let cases: [(x: [Int], w: [Int], stride: (Int, Int), pad: (Int, Int))] = [
            ([1, 3, 7, 13], [5, 3, 7, 7], (2, 2), (3, 3)),
            ([2, 4, 9, 10], [6, 4, 3, 3], (1, 1), (1, 1)),
            ([3, 8, 5, 11], [4, 8, 1, 1], (1, 1), (0, 0)),
            ([1, 6, 8, 9], [3, 6, 1, 1], (2, 2), (0, 0)),
            ([2, 5, 6, 7], [4, 5, 1, 5], (1, 1), (0, 2)),
        ]
        for (i, c) in cases.enumerated() {
            let x = random(c.x, seed: UInt64(i + 1)), w = random(c.w, seed: UInt64(i + 100))
            let b = random([c.w[0]], seed: UInt64(i + 200))
            assertClose(conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.pad),
                        conv2dNaive(x, weight: w, bias: b, stride: c.stride, padding: c.pad))
        }
    }

    func testConv3dMatchesReferenceOnEveryKernelShape() {
        let kernels: [([Int], (Int, Int, Int))] = [
            ([1, 1, 5], (0, 0, 2)), ([1, 5, 1], (0, 2, 0)), ([5, 1, 1], (2, 0, 0)), ([3, 3, 3], (1, 1, 1)),
        ]
        for (i, (k, pad)) in kernels.enumerated() {
            for frames in [1, 3, 6] {
                let x = random([frames, 5, 6, 7], seed: UInt64(i * 10 + frames))
                let w = random([4, 5] + k, seed: UInt64(i + 50))
                let b = random([4], seed: 9)
                assertClose(conv3d(x, weight: w, bias: b, padding: pad), conv3dNaive(x, weight: w, bias: b, padding: pad))
            }
        }
    }

    func testTiledColumnsMatchTheReferenceAcrossTileBoundaries() {
        // Tiles of 7 to 300 output pixels: runs that start mid-row, tiles that end mid-row, a last short tile.
        let x = random([3, 4, 9, 13], seed: 5)
        let w = random([5, 4, 3, 3, 3], seed: 6)
        let b = random([5], seed: 7)
        let expected = conv3dNaive(x, weight: w, bias: b, padding: (1, 1, 1))
        let geometry = ConvolutionGeometry(
            channels: 4,
            t: AxisGeometry(input: 3, kernel: 3, stride: 1, padding: 1),
            y: AxisGeometry(input: 9, kernel: 3, stride: 1, padding: 1),
            x: AxisGeometry(input: 13, kernel: 3, stride: 1, padding: 1))
        for tileBytes in [4 * 108 * 7, 4 * 108 * 13, 4 * 108 * 50, 4 * 108 * 300] {
            var out = Tensor(shape: expected.shape)
            x.data.withUnsafeBufferPointer { xb in w.data.withUnsafeBufferPointer { wb in
                out.data.withUnsafeMutableBufferPointer { ob in
                    for frame in 0..<3 {
                        geometry.convolve(xb.baseAddress!, frame: frame, weight: wb.baseAddress!, bias: b, outputs: 5,
                                          into: ob.baseAddress! + frame * 5 * 117, tileBytes: tileBytes)
                    }
                }
            }}
            assertClose(out, expected)
        }
    }
}
