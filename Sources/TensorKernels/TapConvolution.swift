// Convolutions along one axis of a video (kernels (1,1,k), (1,k,1), (k,1,1)) as one sgemm per kernel tap.
//
// Layout: channels-major video [C, T, H, W] (PyTorch Conv3d's "c t h w" for one video), each channel's
// T·H·W values stored as `segments` runs of `unit` values with `gap` zeros after each run and `lead` zeros
// before the first. With the right runs, a tap that shifts the kernel by s positions along the axis is a
// shift by s·step floats of the whole channel, and every value it would take from outside the video lands
// on a zero. A convolution is then k products weight_k [Cout, Cin] x (shifted input) [Cin, positions],
// accumulated into one output with beta = 1: no column matrix, each product as wide as the whole video.
//
//     axis    unit     segments  gap, lead  step   waste (gap positions computed and discarded)
//     width   W        T·H       r          1      r / W
//     height  H·W      T         r·W        W      r / H
//     time    T·H·W    1         0          H·W    none: out-of-range taps are cut from the product instead

/// The axis a 1-D video convolution runs along.
public enum TapAxis: Sendable {
    case width, height, time
}

/// Where each pixel of a channels-major video lives in a buffer laid out for convolutions along `axis`.
public struct TapLayout: Equatable, Sendable {
    public let frames: Int, height: Int, width: Int
    public let axis: TapAxis
    /// Half the kernel size: taps shift by -radius ... radius.
    public let radius: Int

    public let unit: Int, segments: Int, gap: Int, lead: Int, step: Int

    public init(frames: Int, height: Int, width: Int, axis: TapAxis, radius: Int) {
        precondition(frames > 0 && height > 0 && width > 0 && radius >= 0, "TapLayout: empty video or negative radius")
        (self.frames, self.height, self.width, self.axis, self.radius) = (frames, height, width, axis, radius)
        switch axis {
        case .width: (unit, segments, gap, lead, step) = (width, frames * height, radius, radius, 1)
        case .height: (unit, segments, gap, lead, step) = (height * width, frames, radius * width, radius * width, width)
        case .time: (unit, segments, gap, lead, step) = (frames * height * width, 1, 0, 0, height * width)
        }
    }

    /// Floats per channel of an input buffer: the lead, then every segment with its gap.
    public var channelStride: Int { lead + segments * (unit + gap) }
    /// Floats per channel of an output grid: the same positions without the lead.
    public var gridStride: Int { segments * (unit + gap) }
    /// Output positions a convolution computes: up to the end of the last segment.
    public var span: Int { (segments - 1) * (unit + gap) + unit }

    /// Position of pixel (t, y, 0) on the grid; add `lead` for an input buffer. Rows of W are contiguous.
    @inlinable
    public func rowOffset(frame t: Int, row y: Int) -> Int {
        switch axis {
        case .width: return (t * height + y) * (width + radius)
        case .height: return (t * (height + radius) + y) * width
        case .time: return (t * height + y) * width
        }
    }

    /// Copies channels of frames-major `video` [T, C, H, W] into channels `channelOffset...` of a buffer
    /// with this layout and `stride` floats per channel, at grid (`lead` 0) or input (`lead` = self.lead)
    /// positions. Gaps are left as they are: allocate input buffers zeroed.
    public func pack(_ video: UnsafePointer<Float>, channels: Int, into buffer: UnsafeMutablePointer<Float>,
                     channelOffset: Int = 0, stride: Int, lead: Int) {
        let plane = height * width
        parallelFor(channels * frames, minimumPerThread: 4) { range in
            for item in range {
                let (c, t) = (item / frames, item % frames)
                let source = video + (t * channels + c) * plane
                let channel = buffer + (channelOffset + c) * stride + lead
                for y in 0..<height {
                    // rowOffset + width <= span <= stride - lead: inside this channel.
                    (channel + rowOffset(frame: t, row: y)).update(from: source + y * width, count: width)
                }
            }
        }
    }

    /// The inverse of `pack`: channels of a buffer back to frames-major [T, C, H, W].
    public func unpack(_ buffer: UnsafePointer<Float>, channels: Int, stride: Int, lead: Int,
                       into video: UnsafeMutablePointer<Float>) {
        let plane = height * width
        parallelFor(channels * frames, minimumPerThread: 4) { range in
            for item in range {
                let (c, t) = (item / frames, item % frames)
                let target = video + (t * channels + c) * plane
                let channel = buffer + c * stride + lead
                for y in 0..<height {
                    (target + y * width).update(from: channel + rowOffset(frame: t, row: y), count: width)
                }
            }
        }
    }
}

/// dst[o, q] += Σ_k Σ_i weights[k, o, i] · src[i, lead + q + (k - r)·step] for the grid positions q of
/// `layout`, i.e. the convolution of the input buffer `source` (`inputs` channels, `sourceStride` floats
/// apart, laid out as `layout` with zero gaps) with a kernel of 2r+1 taps along the layout's axis, added to
/// the grid `destination` (`outputs` channels, `destinationStride` floats apart).
///
/// `weights` is [taps, outputs, inputs]: tap-major, so each tap's matrix is contiguous for sgemm.
///
/// Layers wide enough to pay for the transforms run by Winograd's F(m, 5) (`accumulateWinogradTapConvolution`,
/// tiles `WinogradPolicy.line` and, along time, `WinogradPolicy.time`); the rest by one sgemm per tap.
public func accumulateTapConvolution(weights: UnsafePointer<Float>, outputs: Int, inputs: Int, layout: TapLayout,
                                     source: UnsafePointer<Float>, sourceStride: Int,
                                     destination: UnsafeMutablePointer<Float>, destinationStride: Int) {
    let tile = layout.axis == .time ? WinogradPolicy.time(frames: layout.frames, taps: 2 * layout.radius + 1)
        : WinogradPolicy.line
    if let tile, tile.taps == 2 * layout.radius + 1,
       WinogradPolicy.worthwhile(inputs: inputs, outputs: outputs, tiles: layout.span / tile.outputs) {
        precondition(sourceStride >= layout.channelStride && destinationStride >= layout.span,
                     "accumulateTapConvolution: strides \(sourceStride), \(destinationStride) too small for \(layout)")
        accumulateWinogradTapConvolution(tile: tile, weights: weights, outputs: outputs, inputs: inputs, layout: layout,
                                         source: source, sourceStride: sourceStride,
                                         destination: destination, destinationStride: destinationStride)
        return
    }
    accumulateDirectTapConvolution(weights: weights, outputs: outputs, inputs: inputs, layout: layout, source: source,
                                   sourceStride: sourceStride, destination: destination, destinationStride: destinationStride)
}

/// `accumulateTapConvolution` by one sgemm per tap, whatever the axis and size.
public func accumulateDirectTapConvolution(weights: UnsafePointer<Float>, outputs: Int, inputs: Int, layout: TapLayout,
                                           source: UnsafePointer<Float>, sourceStride: Int,
                                           destination: UnsafeMutablePointer<Float>, destinationStride: Int) {
    precondition(sourceStride >= layout.channelStride && destinationStride >= layout.span,
                 "accumulateTapConvolution: strides \(sourceStride), \(destinationStride) too small for \(layout)")
    let r = layout.radius
    // Blocks of output positions, all taps per block, as in accumulateBoxConvolution.
    // Each core takes its own range of positions (one hand-off per convolution, not per product).
    BLAS.prepareSerialCalls()
    let block = outputBlock(outputs: outputs, span: layout.span)
    parallelFor(layout.span, minimumPerThread: 256) { range in
        for start in stride(from: range.lowerBound, to: range.upperBound, by: block) {
            let end = min(range.upperBound, start + block)
            for k in 0...(2 * r) {
                let shift = (k - r) * layout.step
                // Input index lead + q + shift must lie in the buffer, [0, lead + span + gap); where the layout
                // has no gap to read zeros from (time), cutting the range is the zero padding.
                let lo = max(start, -shift - layout.lead)
                let hi = min(end, layout.span + layout.gap - shift)
                guard hi > lo else { continue }
                BLAS.serialSgemm(transA: false, transB: false, m: outputs, n: hi - lo, k: inputs, alpha: 1,
                                 a: weights + k * outputs * inputs, lda: inputs,
                                 b: source + layout.lead + lo + shift, ldb: sourceStride,
                                 beta: 1, c: destination + lo, ldc: destinationStride)
            }
        }
    }
}

/// The one layout change from PyTorch's convolution weights to the tap-shifted kernels' (`accumulateTapConvolution`,
/// `accumulateBoxConvolution` through `BoxKernel`, `conv3dByTapProducts`):
///
///     PyTorch (OIHW)   [Cout, Cin, kh, kw] (nn.Conv2d) or [Cout, Cin, kt, kh, kw] (nn.Conv3d)
///     tap-major        [taps, Cout, Cin'], taps = kt·kh·kw in (t, y, x) order, Cin' = inputChannels.count
///
/// so that each tap's [Cout, Cin'] matrix is contiguous for sgemm. Only `inputChannels` are kept, in that order
/// (all of them when nil): a convolution of a concatenation splits into one per group of channels.
public func tapMajorWeights(_ weight: Tensor, inputChannels: [Int]? = nil) -> Tensor {
    precondition(weight.rank == 4 || weight.rank == 5, "tapMajorWeights: weight must be rank 4 or 5, got \(weight.shape)")
    let (cout, cin) = (weight.shape[0], weight.shape[1])
    let taps = weight.shape.dropFirst(2).reduce(1, *)
    let channels = inputChannels ?? Array(0..<cin)
    precondition(channels.allSatisfy { $0 >= 0 && $0 < cin }, "tapMajorWeights: channels outside 0..<\(cin)")
    let k = channels.count
    return Tensor(shape: [taps, cout, k]) { out in
        weight.data.withUnsafeBufferPointer { source in
            for tap in 0..<taps {
                for o in 0..<cout {
                    for (j, i) in channels.enumerated() {
                        // (o·Cin + i)·taps + tap < Cout·Cin·taps: i < Cin by the precondition.
                        out[(tap * cout + o) * k + j] = source[(o * cin + i) * taps + tap]
                    }
                }
            }
        }
    }
}

/// A 1-D convolution along `axis` of frames-major video `x` [T, Cin, H, W] with a Conv3d weight
/// [Cout, Cin, kt, kh, kw] and "same" padding, through `accumulateTapConvolution`: the fast path in the
/// frames-major shape of `conv3d`, for tests against `conv3dNaive`.
public func tapConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, axis: TapAxis) -> Tensor {
    let (t, cin, h, w) = x.dims4
    let cout = weight.shape[0]
    precondition(weight.rank == 5, "tapConvolution: weight must be rank 5, got \(weight.shape)")
    let taps = weight.shape[2] * weight.shape[3] * weight.shape[4]
    precondition(taps % 2 == 1 && weight.shape[1] == cin, "tapConvolution: weight \(weight.shape) for input \(x.shape)")
    precondition(weight.shape[2...4].filter { $0 > 1 }.count <= 1, "tapConvolution: \(weight.shape) is not a 1-D kernel")
    let layout = TapLayout(frames: t, height: h, width: w, axis: axis, radius: taps / 2)
    let taps3 = tapMajorWeights(weight)
    var input = [Float](repeating: 0, count: cin * layout.channelStride)
    var grid = [Float](repeating: 0, count: cout * layout.gridStride)
    var out = Tensor(shape: [t, cout, h, w])
    x.data.withUnsafeBufferPointer { xb in
    input.withUnsafeMutableBufferPointer { ib in
    grid.withUnsafeMutableBufferPointer { gb in
    taps3.data.withUnsafeBufferPointer { wb in
    out.data.withUnsafeMutableBufferPointer { ob in
        layout.pack(xb.baseAddress!, channels: cin, into: ib.baseAddress!, stride: layout.channelStride, lead: layout.lead)
        if let bias {
            for o in 0..<cout { (gb.baseAddress! + o * layout.gridStride).update(repeating: bias.data[o], count: layout.gridStride) }
        }
        accumulateTapConvolution(weights: wb.baseAddress!, outputs: cout, inputs: cin, layout: layout,
                                 source: ib.baseAddress!, sourceStride: layout.channelStride,
                                 destination: gb.baseAddress!, destinationStride: layout.gridStride)
        layout.unpack(gb.baseAddress!, channels: cout, stride: layout.gridStride, lead: 0, into: ob.baseAddress!)
    }}}}}
    return out
}

/// 3-D convolution, stride 1, of frames-major video `x` [T, Cin, H, W] with `weight` [Cout, Cin, kt, kh, kw]
/// and `padding`, for layers with few outputs: one sgemm per frame computes every tap's contribution at the
/// pixel it reads, Y [taps·Cout, H·W] = W' [taps·Cout, Cin] · x[t] [Cin, H·W], and the output sums the taps'
/// planes shifted into place. Same result as `conv3d`.
///
/// Where the time goes: for the flow head's last layer (2 outputs, 6,912 column rows) im2col writes and
/// reads 3,456 floats per output value; here each input value is read once by sgemm and the shifted sum
/// touches taps·Cout floats per pixel.
public func conv3dByTapProducts(_ x: Tensor, weight: Tensor, bias: Tensor?, padding: (Int, Int, Int)) -> Tensor {
    let (t, cin, h, w) = x.dims4
    precondition(weight.rank == 5 && weight.shape[1] == cin, "conv3dByTapProducts: weight \(weight.shape) for input \(x.shape)")
    let (cout, kt, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3], weight.shape[4])
    let (to, ho, wo) = (t + 2 * padding.0 - kt + 1, h + 2 * padding.1 - kh + 1, w + 2 * padding.2 - kw + 1)
    precondition(to > 0 && ho > 0 && wo > 0, "conv3dByTapProducts: empty output for \(x.shape) and \(weight.shape)")
    let taps = kt * kh * kw
    let plane = h * w
    let rows = taps * cout
    // [taps, Cout, Cin] is [taps·Cout, Cin] row-major: row tap·Cout + o.
    let matrix = tapMajorWeights(weight)
    var products = [Float](repeating: 0, count: t * rows * plane)     // [T, taps, Cout, H·W]
    var out = Tensor(shape: [to, cout, ho, wo])
    x.data.withUnsafeBufferPointer { xb in
    matrix.data.withUnsafeBufferPointer { wb in
    products.withUnsafeMutableBufferPointer { pb in
    out.data.withUnsafeMutableBufferPointer { ob in
        for frame in 0..<t {
            BLAS.sgemm(m: rows, n: plane, k: cin, a: wb.baseAddress!, lda: cin,
                       b: xb.baseAddress! + frame * cin * plane, ldb: plane,
                       c: pb.baseAddress! + frame * rows * plane, ldc: plane)
        }
        let p = UnsafePointer(pb.baseAddress!)
        parallelFor(to * cout * ho, minimumPerThread: 8) { items in
            for item in items {
                let oy = item % ho, o = (item / ho) % cout, of = item / (ho * cout)
                let row = ob.baseAddress! + item * wo
                let start = bias?.data[o] ?? 0
                for ox in 0..<wo { row[ox] = start }
                for dt in 0..<kt {
                    let it = of - padding.0 + dt
                    guard it >= 0, it < t else { continue }
                    for dy in 0..<kh {
                        let iy = oy - padding.1 + dy
                        guard iy >= 0, iy < h else { continue }
                        for dx in 0..<kw {
                            let tap = (dt * kh + dy) * kw + dx
                            let source = p + ((it * taps + tap) * cout + o) * plane + iy * w
                            // Output columns whose input column ox - padding + dx lies in 0..<w.
                            let lo = max(0, padding.2 - dx), hi = min(wo, w + padding.2 - dx)
                            var ox = lo
                            while ox < hi {
                                row[ox] += source[ox - padding.2 + dx]
                                ox += 1
                            }
                        }
                    }
                }
            }
        }
    }}}}
    return out
}
