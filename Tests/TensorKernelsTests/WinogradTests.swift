import XCTest
@testable import TensorKernels
import TestSupport

/// Winograd's minimal filtering: the matrices against the definition, the plain per-tile references against
/// the direct convolutions, and the fast kernels against both on shapes where the tile edges, the zero gaps and
/// the block boundaries matter.
final class WinogradTests: XCTestCase {
    private var seed: UInt64 = 900

    private func random(_ shape: [Int]) -> Tensor {
        seed += 1
        return TensorKernelsTests.random(shape, seed: seed)
    }

    /// Largest |a - b| relative to 1 + max |b|, and where.
    private func difference(_ a: Tensor, _ b: Tensor) -> (Float, [Int]) {
        let (d, i) = a.maxAbsDifference(b)
        let scale = 1 + (b.data.map(abs).max() ?? 0)
        return (d / scale, a.position(of: i))
    }

    // Bounds, relative to 1 + the largest output. The direct kernels land near 1e-7; Winograd's float error grows
    // with the tile (its transforms add and scale up to α² values of the size of the inputs): F(2,·) and F(4,·)
    // stay below 1e-5 on these sums of at most 27·32 products, tiles of 8 inputs or more (F(6,3), F(4,5), F(5,5))
    // below 1e-4. A misplaced tap, row or tile
    // is off by the size of one product, 1e-2 of the output or more.
    private func tolerance(_ tile: WinogradTile) -> Float { tile.inputs >= 8 ? 1e-4 : 2e-5 }

    func testTileMatricesComputeTheCorrelation() {
        for (m, r) in [(2, 3), (4, 3), (6, 3), (2, 5), (4, 5)] {
            let tile = WinogradTile(outputs: m, taps: r)
            let alpha = tile.inputs
            var generator = SeededGenerator(seed: UInt64(m * 10 + r))
            let g = (0..<r).map { _ in Double(generator.uniform(-1, 1)) }, d = (0..<alpha).map { _ in Double(generator.uniform(-1, 1)) }
            let gg = tile.weightTransform.map { row in zip(row, g).map(*).reduce(0, +) }
            let bd = tile.inputTransform.map { row in zip(row, d).map(*).reduce(0, +) }
            let y = tile.outputTransform.map { row in (0..<alpha).map { row[$0] * gg[$0] * bd[$0] }.reduce(0, +) }
            for i in 0..<m {
                let direct = (0..<r).map { g[$0] * d[i + $0] }.reduce(0, +)
                XCTAssertEqual(y[i], direct, accuracy: 1e-9, "F(\(m), \(r)) output \(i)")
            }
            // The programs compute Bᵀ d and Aᵀ v as the matrices do (here on vectors of one float).
            assertClose(run(tile.inputProgram, d.map(Float.init)), bd.map(Float.init), accuracy: 1e-4, "F(\(m), \(r)) Bᵀ")
            let v = (0..<alpha).map { _ in generator.uniform(-1, 1) }
            let av = tile.outputTransform.map { row in zip(row, v).map { Float($0) * $1 }.reduce(0, +) }
            assertClose(run(tile.outputProgram, v), av, accuracy: 1e-4, "F(\(m), \(r)) Aᵀ")
        }
    }

    private func run(_ program: TransformProgram, _ inputs: [Float]) -> [Float] {
        var storage = inputs.map { [$0] } + Array(repeating: [Float(0)], count: program.temporaryCount + program.outputCount)
        var pointers = [UnsafeMutablePointer<Float>]()
        for i in storage.indices { pointers.append(.allocate(capacity: 1)); pointers[i].initialize(to: storage[i][0]) }
        defer { pointers.forEach { $0.deallocate() } }
        pointers.withUnsafeMutableBufferPointer { program.run($0.baseAddress!, count: 1, accumulate: false) }
        storage = pointers.map { [$0.pointee] }
        return storage.suffix(program.outputCount).map { $0[0] }
    }

    private func assertClose(_ a: [Float], _ b: [Float], accuracy: Float, _ message: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, message, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy * (1 + abs(y)), message, file: file, line: line) }
    }

    func testBoxReferenceMatchesTheDirectConvolution() {
        for (xs, ws) in [([2, 3, 7, 9], [4, 3, 3, 3]), ([3, 2, 5, 6], [3, 2, 3, 3, 3])] {
            let x = random(xs), w = random(ws), b = random([ws[0]])
            let plain = ws.count == 4 ? conv2dNaive(x, weight: w, bias: b, padding: (1, 1))
                : conv3dNaive(x, weight: w, bias: b, padding: (1, 1, 1))
            for m in [2, 4, 6] {
                let tile = WinogradTile(outputs: m, taps: 3)
                let (d, at) = difference(winogradBoxConvolutionReference(x, weight: w, bias: b, tile: tile), plain)
                XCTAssertLessThanOrEqual(d, tolerance(tile), "reference F(\(m), 3) on \(xs) * \(ws): \(d) at \(at)")
            }
        }
    }

    func testFastBoxMatchesTheReferencesOnAwkwardShapes() {
        // One frame; odd widths and heights; widths and heights below the tile and not a multiple of it; one input or
        // output channel; more frames than the time taps reach; several blocks per frame (blockTiles small).
        let cases: [([Int], [Int])] = [
            ([1, 3, 7, 13], [5, 3, 3, 3]), ([2, 1, 9, 10], [3, 1, 3, 3]), ([3, 4, 5, 1], [1, 4, 3, 3]),
            ([1, 2, 2, 3], [2, 2, 3, 3]), ([2, 5, 11, 6], [4, 5, 3, 3]),
            ([1, 3, 6, 7], [4, 3, 3, 3, 3]), ([2, 2, 5, 9], [3, 2, 3, 3, 3]), ([5, 3, 9, 5], [2, 3, 3, 3, 3]),
            ([4, 1, 3, 12], [1, 1, 3, 3, 3]), ([7, 2, 4, 8], [3, 2, 3, 3, 3]),
        ]
        // Every split of the blocks over the cores: one, two and an odd three.
        let original = ComputeThreads.count
        defer { ComputeThreads.count = original }
        for (xs, ws) in cases {
            ComputeThreads.count = 1 + xs[0] % 3
            let x = random(xs), w = random(ws), b = random([ws[0]])
            let plain = ws.count == 4 ? conv2dNaive(x, weight: w, bias: b, padding: (1, 1))
                : conv3dNaive(x, weight: w, bias: b, padding: (1, 1, 1))
            for m in [2, 4, 6] {
                let tile = WinogradTile(outputs: m, taps: 3)
                let reference = winogradBoxConvolutionReference(x, weight: w, bias: b, tile: tile)
                for blockTiles in [1, 7, 256] {
                    let fast = winogradBoxConvolution(x, weight: w, bias: b, tile: tile, blockTiles: blockTiles)
                    XCTAssertEqual(fast.shape, plain.shape)
                    let (d, at) = difference(fast, plain), (dr, atr) = difference(fast, reference)
                    let what = "F(\(m), 3) on \(xs) * \(ws), \(blockTiles) tiles per block"
                    XCTAssertLessThanOrEqual(d, tolerance(tile), "\(what) against the direct convolution: \(d) at \(at)")
                    XCTAssertLessThanOrEqual(dr, tolerance(tile), "\(what) against the Winograd reference: \(dr) at \(atr)")
                }
            }
        }
    }

    func testFastTapMatchesTheReferencesOnAwkwardShapes() {
        // One frame, one row, one column, extents below the tile and not a multiple of it, one channel, and windows
        // of 4, 5 and 7 frames for the tiles along time.
        let videos: [[Int]] = [[1, 3, 7, 13], [3, 2, 1, 5], [2, 4, 5, 1], [2, 1, 9, 10], [1, 3, 2, 3], [3, 5, 11, 6],
                               [4, 3, 3, 5], [5, 2, 4, 3], [7, 3, 2, 5], [5, 1, 1, 9]]
        let original = ComputeThreads.count
        defer { ComputeThreads.count = original }
        for (index, shape) in videos.enumerated() {
            ComputeThreads.count = 1 + index % 3   // one, two and an odd three cores share the blocks
            for axis in [TapAxis.width, .height, .time] {
                let kernel = axis == .width ? [1, 1, 5] : axis == .height ? [1, 5, 1] : [5, 1, 1]
                let w = random([shape[1] == 1 ? 1 : 4, shape[1]] + kernel)
                let x = random(shape), b = random([w.shape[0]])
                let plain = conv3dNaive(x, weight: w, bias: b, padding: (kernel[0] / 2, kernel[1] / 2, kernel[2] / 2))
                for m in axis == .time ? [2, 4, 5] : [2, 4] {
                    let tile = WinogradTile(outputs: m, taps: 5)
                    let reference = winogradTapConvolutionReference(x, weight: w, bias: b, axis: axis, tile: tile)
                    for blockTiles in [1, 5, 256] {
                        let fast = winogradTapConvolution(x, weight: w, bias: b, axis: axis, tile: tile, blockTiles: blockTiles)
                        XCTAssertEqual(fast.shape, plain.shape)
                        let (d, at) = difference(fast, plain), (dr, atr) = difference(fast, reference)
                        let what = "F(\(m), 5) along \(axis) on \(shape), \(blockTiles) tiles per block"
                        XCTAssertLessThanOrEqual(d, tolerance(tile), "\(what) against the direct convolution: \(d) at \(at)")
                        XCTAssertLessThanOrEqual(dr, tolerance(tile), "\(what) against the Winograd reference: \(dr) at \(atr)")
                    }
                }
            }
        }
    }

    func testTheKernelsTheModelCallsTakeTheWinogradPathWhereItPays() throws {
        // Wide enough layers (16 channels, 80 tiles) go through Winograd inside boxConvolution and
        // accumulateTapConvolution; the results still match the direct convolutions within Winograd's bound.
        let box = try XCTUnwrap(WinogradPolicy.box), line = try XCTUnwrap(WinogradPolicy.line)
        let x = random([2, 16, 17, 37]), w2 = random([16, 16, 3, 3]), w3 = random([16, 16, 3, 3, 3]), b = random([16])
        let kernel2 = BoxKernel(weight: w2, bias: b), kernel3 = BoxKernel(weight: w3, bias: b)
        XCTAssertEqual(kernel2.winograd?.tile, box)
        XCTAssertEqual(kernel3.winograd?.frameTaps, 3)
        XCTAssertNil(BoxKernel(weight: random([16, 16, 5, 5]), bias: nil).winograd, "only 3x3 spatial kernels")
        XCTAssertNil(BoxKernel(weight: random([4, 2, 3, 3]), bias: nil).winograd, "too narrow to pay")
        var (d, at) = difference(boxConvolution([x], kernel2), conv2dNaive(x, weight: w2, bias: b, padding: (1, 1)))
        XCTAssertLessThanOrEqual(d, tolerance(box), "boxConvolution 2-D: \(d) at \(at)")
        (d, at) = difference(boxConvolution([x], kernel3), conv3dNaive(x, weight: w3, bias: b, padding: (1, 1, 1)))
        XCTAssertLessThanOrEqual(d, tolerance(box), "boxConvolution 3-D: \(d) at \(at)")
        let video = random([5, 16, 9, 9])
        for axis in [TapAxis.width, .height, .time] {
            let kernel = axis == .width ? [1, 1, 5] : axis == .height ? [1, 5, 1] : [5, 1, 1]
            let w = random([16, 16] + kernel)
            let x = axis == .time ? video : x
            let plain = conv3dNaive(x, weight: w, bias: b, padding: (kernel[0] / 2, kernel[1] / 2, kernel[2] / 2))
            (d, at) = difference(tapConvolution(x, weight: w, bias: b, axis: axis), plain)
            XCTAssertLessThanOrEqual(d, tolerance(line), "accumulateTapConvolution along \(axis): \(d) at \(at)")
            // Winograd's rounding differs from the direct sum's: a result equal to the direct path's to the bit
            // would mean the Winograd path never ran.
            let direct = winogradTapConvolution(x, weight: w, bias: b, axis: axis, tile: nil)
            XCTAssertNotEqual(tapConvolution(x, weight: w, bias: b, axis: axis).data, direct.data, "\(axis): Winograd path taken")
        }
    }
}
