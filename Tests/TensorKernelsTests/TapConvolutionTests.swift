import XCTest
@testable import TensorKernels

/// The tap-shifted sgemm convolutions against conv3dNaive, on shapes where the zero gaps and cut ranges matter.
final class TapConvolutionTests: XCTestCase {
    // Float32 sgemm sums of at most 5 x 9 products of magnitude <= 1 against double sums: differences stay
    // near 1e-6; 1e-5 leaves room and still catches any misplaced tap (errors of order 0.1).
    private let tolerance: Float = 1e-5

    private func kernel(_ axis: TapAxis, taps: Int) -> ([Int], (Int, Int, Int)) {
        switch axis {
        case .width: return ([1, 1, taps], (0, 0, taps / 2))
        case .height: return ([1, taps, 1], (0, taps / 2, 0))
        case .time: return ([taps, 1, 1], (taps / 2, 0, 0))
        }
    }

    func testEveryAxisMatchesReferenceOnAwkwardShapes() {
        // One frame, one row, one column, widths and heights below the kernel size, odd sizes.
        let videos: [[Int]] = [[1, 3, 7, 13], [3, 2, 1, 5], [2, 4, 5, 1], [6, 5, 3, 2], [4, 9, 1, 1], [2, 3, 70 / 10, 26]]
        for (v, shape) in videos.enumerated() {
            for (a, axis) in [TapAxis.width, .height, .time].enumerated() {
                for taps in [5, 3] {
                    let (k, padding) = kernel(axis, taps: taps)
                    let x = random(shape, seed: UInt64(v * 10 + a + 1))
                    let w = random([4, shape[1]] + k, seed: UInt64(v * 10 + a + 50))
                    let b = random([4], seed: UInt64(v + 7))
                    let fast = tapConvolution(x, weight: w, bias: b, axis: axis)
                    let plain = conv3dNaive(x, weight: w, bias: b, padding: padding)
                    XCTAssertEqual(fast.shape, plain.shape)
                    let (d, i) = fast.maxAbsDifference(plain)
                    XCTAssertLessThanOrEqual(d, tolerance, "\(axis) taps \(taps) on \(shape): max |diff| \(d) at \(fast.position(of: i))")
                }
            }
        }
    }

    func testChannelGroupsAddUpToTheWholeConvolution() {
        // The GRU convolves its constant input channels once and the others every iteration: the two sums
        // over the input channel groups must add up to the convolution over all channels.
        let (t, c, h, w) = (3, 6, 4, 5)
        let x = random([t, c, h, w], seed: 11), weight = random([3, c, 1, 5, 1], seed: 12)
        let layout = TapLayout(frames: t, height: h, width: w, axis: .height, radius: 2)
        var input = [Float](repeating: 0, count: c * layout.channelStride)
        var grid = [Float](repeating: 0, count: 3 * layout.gridStride)
        let groups = [[0, 1, 4, 5], [2, 3]]
        for group in groups {
            let part = tapMajorWeights(weight, inputChannels: group)
            // The group's channels packed contiguously, as the GRU's buffers hold them.
            var selected = Tensor(shape: [t, group.count, h, w])
            for f in 0..<t { for (j, ch) in group.enumerated() { for p in 0..<(h * w) {
                selected.data[(f * group.count + j) * h * w + p] = x.data[(f * c + ch) * h * w + p]
            }}}
            input = [Float](repeating: 0, count: c * layout.channelStride)
            selected.data.withUnsafeBufferPointer { sb in
            input.withUnsafeMutableBufferPointer { ib in
            grid.withUnsafeMutableBufferPointer { gb in
            part.data.withUnsafeBufferPointer { wb in
                layout.pack(sb.baseAddress!, channels: group.count, into: ib.baseAddress!, stride: layout.channelStride,
                            lead: layout.lead)
                accumulateTapConvolution(weights: wb.baseAddress!, outputs: 3, inputs: group.count, layout: layout,
                                         source: ib.baseAddress!, sourceStride: layout.channelStride,
                                         destination: gb.baseAddress!, destinationStride: layout.gridStride)
            }}}}
        }
        var out = Tensor(shape: [t, 3, h, w])
        grid.withUnsafeBufferPointer { gb in
            out.data.withUnsafeMutableBufferPointer { ob in
                layout.unpack(gb.baseAddress!, channels: 3, stride: layout.gridStride, lead: 0, into: ob.baseAddress!)
            }
        }
        let (d, i) = out.maxAbsDifference(conv3dNaive(x, weight: weight, bias: nil, padding: (0, 2, 0)))
        XCTAssertLessThanOrEqual(d, tolerance, "max |diff| \(d) at \(out.position(of: i))")
    }

    func testPackAndUnpackAreInverseAndLeaveGapsZero() {
        let video = random([2, 3, 4, 5], seed: 21)
        for axis in [TapAxis.width, .height, .time] {
            let layout = TapLayout(frames: 2, height: 4, width: 5, axis: axis, radius: 2)
            var buffer = [Float](repeating: 0, count: 3 * layout.channelStride)
            var back = Tensor(shape: video.shape)
            video.data.withUnsafeBufferPointer { vb in
            buffer.withUnsafeMutableBufferPointer { bb in
            back.data.withUnsafeMutableBufferPointer { ob in
                layout.pack(vb.baseAddress!, channels: 3, into: bb.baseAddress!, stride: layout.channelStride, lead: layout.lead)
                layout.unpack(bb.baseAddress!, channels: 3, stride: layout.channelStride, lead: layout.lead, into: ob.baseAddress!)
            }}}
            XCTAssertEqual(back, video, "\(axis)")
            // Every value of the video is stored once; everything else is a zero of the gaps.
            let nonZero = buffer.filter { $0 != 0 }.count
            XCTAssertEqual(nonZero, video.data.filter { $0 != 0 }.count, "\(axis)")
        }
    }
}

/// The few-output 3-D convolution against conv3dNaive.
final class TapProductConvolutionTests: XCTestCase {
    func testMatchesReferenceOnAwkwardShapes() {
        var state: UInt64 = 5
        func random(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape) { buffer in
                for i in 0..<buffer.count {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    buffer[i] = Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
                }
            }
        }
        // One frame, a single row or column, the flow head's 3x3x3 and asymmetric kernels.
        let cases: [([Int], [Int], (Int, Int, Int))] = [
            ([1, 4, 5, 7], [2, 4, 3, 3, 3], (1, 1, 1)),
            ([3, 5, 1, 9], [2, 5, 3, 3, 3], (1, 1, 1)),
            ([4, 3, 6, 1], [3, 3, 3, 3, 3], (1, 1, 1)),
            ([2, 6, 4, 5], [1, 6, 1, 3, 5], (0, 1, 2)),
        ]
        for (xs, ws, padding) in cases {
            let x = random(xs), w = random(ws), b = random([ws[0]])
            let fast = conv3dByTapProducts(x, weight: w, bias: b, padding: padding)
            let plain = conv3dNaive(x, weight: w, bias: b, padding: padding)
            XCTAssertEqual(fast.shape, plain.shape)
            let (d, i) = fast.maxAbsDifference(plain)
            // Sums of at most 27·6 products of magnitude <= 1: float rounding stays below 1e-5.
            XCTAssertLessThanOrEqual(d, 1e-5, "\(xs) * \(ws): max |diff| \(d) at \(fast.position(of: i))")
        }
    }
}
