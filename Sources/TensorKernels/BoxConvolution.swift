import Foundation

// "Same" convolutions (stride 1, odd kernels, padding k/2) in 2-D and 3-D as one sgemm per kernel tap.
//
// The input is packed channels-major with zero gaps: every row of W values is followed by rx zeros, every
// frame's H rows by ry zero rows, and the frames by rt zero frames, with zeros before the first value as well:
//
//     position of (t, y, x) = lead + t·frameStride + y·rowStride + x,
//     rowStride = W + rx,  frameStride = (H + ry)·rowStride,  lead = rt·frameStride + ry·rowStride + rx.
//
// A kernel tap (dt, dy, dx) then reads the whole video shifted by dt·frameStride + dy·rowStride + dx floats,
// and every read that leaves the video (x + dx outside the row, y + dy outside the frame, t + dt outside the
// window) lands on one of the zeros: the convolution is Σ_tap W_tap [Cout, Cin] · (shifted input) [Cin, positions],
// with no column matrix and each product as wide as all frames together. 2-D convolutions over a batch of
// images are the case rt = 0 (images never mix). The output grid has the same positions without the lead; the
// gap positions are computed and discarded (1/W + 1/H of the work).

/// The padded channels-major layout of a video for "same" convolutions with radii (rt, ry, rx).
public struct BoxLayout: Equatable, Sendable {
    public let frames: Int, height: Int, width: Int
    public let radius: (t: Int, y: Int, x: Int)

    public init(frames: Int, height: Int, width: Int, radius: (t: Int, y: Int, x: Int)) {
        precondition(frames > 0 && height > 0 && width > 0 && radius.t >= 0 && radius.y >= 0 && radius.x >= 0,
                     "BoxLayout: empty video or negative radius")
        (self.frames, self.height, self.width, self.radius) = (frames, height, width, radius)
    }

    public static func == (a: BoxLayout, b: BoxLayout) -> Bool {
        a.frames == b.frames && a.height == b.height && a.width == b.width && a.radius == b.radius
    }

    public var rowStride: Int { width + radius.x }
    public var frameStride: Int { (height + radius.y) * rowStride }
    public var lead: Int { radius.t * frameStride + radius.y * rowStride + radius.x }
    /// Floats per channel of an input buffer: the lead, the frames, and rt zero frames after them.
    public var channelStride: Int { lead + (frames + radius.t) * frameStride }
    /// Floats per channel of an output grid.
    public var gridStride: Int { frames * frameStride }
    /// Output positions a convolution computes: up to the last value of the last frame.
    public var span: Int { (frames - 1) * frameStride + (height - 1) * rowStride + width }

    /// Position of (t, y, 0) on the grid; add `lead` in an input buffer.
    @inlinable
    public func rowOffset(frame t: Int, row y: Int) -> Int { t * frameStride + y * rowStride }

    /// Copies frames-major `video` [T, C, H, W] into channels `channelOffset..<channelOffset + C` of an input
    /// buffer (`channelStride` floats per channel, allocated zeroed).
    public func pack(_ video: UnsafePointer<Float>, channels: Int, into buffer: UnsafeMutablePointer<Float>, channelOffset: Int) {
        let plane = height * width
        let stride = channelStride, lead = self.lead
        parallelFor(channels * frames, minimumPerThread: 4) { range in
            for item in range {
                let (c, t) = (item / frames, item % frames)
                let source = video + (t * channels + c) * plane
                let channel = buffer + (channelOffset + c) * stride + lead
                for y in 0..<height {
                    // rowOffset + width <= span: inside this channel's buffer.
                    (channel + rowOffset(frame: t, row: y)).update(from: source + y * width, count: width)
                }
            }
        }
    }
}

/// grid[o, q] += Σ_tap Σ_i weights[tap, o, i] · source[i, lead + q + shift(tap)] over the grid positions of
/// `layout`: the "same" convolution with kernel (2rt+1, 2ry+1, 2rx+1), taps in (t, y, x) order.
public func accumulateBoxConvolution(weights: UnsafePointer<Float>, outputs: Int, inputs: Int, layout: BoxLayout,
                                     source: UnsafePointer<Float>, destination: UnsafeMutablePointer<Float>) {
    let (rt, ry, rx) = layout.radius
    // Every tap adds into the same outputs: taking the positions in blocks keeps that block of the output in
    // cache across all taps instead of streaming the whole output through memory once per tap.
    // Each core takes its own range of positions (one hand-off per convolution, not per product).
    BLAS.prepareSerialCalls()
    let block = outputBlock(outputs: outputs, span: layout.span)
    parallelFor(layout.span, minimumPerThread: 256) { range in
        for start in stride(from: range.lowerBound, to: range.upperBound, by: block) {
            let end = min(start + block, range.upperBound)
            var tap = 0
            for dt in -rt...rt {
                // Output frames f whose source frame f + dt lies outside the video would read only the zero
                // frames around it: their positions are cut from this tap's products (exactly the zero padding;
                // 2 of 15 frame-taps of a 3x3x3 kernel over 5 frames). Frame f holds grid positions
                // [f·frameStride, (f+1)·frameStride).
                let lo = max(start, max(0, -dt) * layout.frameStride)
                let hi = min(end, (layout.frames - max(0, dt)) * layout.frameStride)
                for dy in -ry...ry {
                    for dx in -rx...rx {
                        defer { tap += 1 }
                        guard hi > lo else { continue }
                        let shift = dt * layout.frameStride + dy * layout.rowStride + dx
                        // lead + q + shift stays in [0, channelStride) for q < span: the lead and the trailing
                        // zero frames are as large as the largest shift.
                        BLAS.serialSgemm(transA: false, transB: false, m: outputs, n: hi - lo, k: inputs, alpha: 1,
                                         a: weights + tap * outputs * inputs, lda: inputs,
                                         b: source + layout.lead + lo + shift, ldb: layout.channelStride,
                                         beta: 1, c: destination + lo, ldc: layout.gridStride)
                    }
                }
            }
        }
    }
}

/// Output positions per block of a tap-shifted convolution: about `outputBlockBytes` of output (Cout x block
/// floats), wide enough for sgemm's own blocking. `DYNSTEREO_OUTPUT_BLOCK_KB` overrides it for measurements.
public let outputBlockBytes: Int = {
    if let text = ProcessInfo.processInfo.environment["DYNSTEREO_OUTPUT_BLOCK_KB"], let kb = Int(text), kb > 0 {
        return kb << 10
    }
    return 1 << 20
}()

func outputBlock(outputs: Int, span: Int) -> Int {
    max(256, outputBlockBytes / (4 * max(outputs, 1)))
}

/// A "same" convolution's weights rearranged once for `boxConvolution`: [taps, Cout, Cin] with the kernel's
/// radii, from PyTorch's [Cout, Cin, kh, kw] (2-D, per image) or [Cout, Cin, kt, kh, kw] (3-D, over frames).
public struct BoxKernel: Sendable {
    public let taps: Tensor          // [taps, Cout, Cin]
    public let bias: [Float]         // [Cout], zeros when the layer has none
    public let outputs: Int, inputs: Int
    public let radius: (t: Int, y: Int, x: Int)
    /// The same weights in Winograd's domain, for kernels with a 3x3 spatial part and channels enough to pay
    /// for the transforms (`boxConvolution` then takes that path on frames large enough).
    public let winograd: WinogradBoxKernel?

    /// `winograd`: the tile of the Winograd path (by default the network's choice, `WinogradPolicy.box`), or nil
    /// for the tap-shifted sgemms only.
    public init(weight: Tensor, bias: Tensor?, winograd tile: WinogradTile? = WinogradPolicy.box) {
        precondition(weight.rank == 4 || weight.rank == 5, "BoxKernel: weight must be rank 4 or 5, got \(weight.shape)")
        let kernel = weight.rank == 4 ? [1] + Array(weight.shape[2...3]) : Array(weight.shape[2...4])
        precondition(kernel.allSatisfy { $0 % 2 == 1 }, "BoxKernel: kernel \(kernel) is not odd in every axis")
        (outputs, inputs) = (weight.shape[0], weight.shape[1])
        radius = (kernel[0] / 2, kernel[1] / 2, kernel[2] / 2)
        taps = tapMajorWeights(weight)
        let cout = outputs
        self.bias = bias.map { b in
            precondition(b.count == cout, "BoxKernel: bias \(b.shape) for \(cout) outputs")
            return b.data
        } ?? [Float](repeating: 0, count: cout)
        if let tile, radius.y == 1, radius.x == 1, WinogradPolicy.worthwhile(inputs: inputs, outputs: cout, tiles: .max) {
            winograd = WinogradBoxKernel(tile: tile, taps: taps, frameTaps: kernel[0])
        } else {
            winograd = nil
        }
    }
}

/// The "same" convolution (stride 1, padding k/2) of the channel-wise concatenation of frames-major `inputs`
/// (each [T, Ci, H, W]) with `kernel`, then ReLU when `relu` is set: [T, Cout, H, W]. A 2-D kernel convolves
/// each of the T images on its own, a 3-D kernel runs over the frames. Equal to conv2d / conv3d with padding k/2.
public func boxConvolution(_ inputs: [Tensor], _ kernel: BoxKernel, relu: Bool = false) -> Tensor {
    precondition(!inputs.isEmpty, "boxConvolution: no input")
    let (t, _, h, w) = inputs[0].dims4
    let cin = inputs.reduce(0) { total, part in
        let (pt, pc, ph, pw) = part.dims4
        precondition(pt == t && ph == h && pw == w, "boxConvolution: input \(part.shape) beside \(inputs[0].shape)")
        return total + pc
    }
    precondition(cin == kernel.inputs, "boxConvolution: \(cin) input channels for a kernel of \(kernel.inputs)")
    // Winograd where the frames hold tiles enough to amortise the transforms.
    if let winograd = kernel.winograd {
        let m = winograd.tile.outputs
        if WinogradPolicy.worthwhile(inputs: cin, outputs: kernel.outputs, tiles: t * ((h + m - 1) / m) * ((w + m - 1) / m)) {
            return winogradBoxConvolution(inputs, winograd, bias: kernel.bias, relu: relu)
        }
    }
    let layout = BoxLayout(frames: t, height: h, width: w, radius: kernel.radius)
    let cout = kernel.outputs
    var buffer = [Float](repeating: 0, count: cin * layout.channelStride)
    var grid = [Float](unsafeUninitializedCapacity: cout * layout.gridStride) { storage, count in
        for o in 0..<cout {
            (storage.baseAddress! + o * layout.gridStride).initialize(repeating: kernel.bias[o], count: layout.gridStride)
        }
        count = cout * layout.gridStride
    }
    buffer.withUnsafeMutableBufferPointer { bb in
        var offset = 0
        for part in inputs {
            part.data.withUnsafeBufferPointer { pb in
                layout.pack(pb.baseAddress!, channels: part.shape[1], into: bb.baseAddress!, channelOffset: offset)
            }
            offset += part.shape[1]
        }
    }
    buffer.withUnsafeBufferPointer { bb in
    grid.withUnsafeMutableBufferPointer { gb in
        kernel.taps.data.withUnsafeBufferPointer { wb in
            accumulateBoxConvolution(weights: wb.baseAddress!, outputs: cout, inputs: cin, layout: layout,
                                     source: bb.baseAddress!, destination: gb.baseAddress!)
        }
    }}
    // The packed input is dead: released before the output exists, so that the three are never alive together
    // (for the flow head over 20 frames of 480x640: 220 MB less at the window's memory peak).
    buffer = []
    let plane = h * w
    return Tensor(shape: [t, cout, h, w]) { out in
        grid.withUnsafeBufferPointer { gb in
            parallelFor(cout * t, minimumPerThread: 4) { items in
                for item in items {
                    let (o, frame) = (item / t, item % t)
                    let target = out.baseAddress! + (frame * cout + o) * plane
                    for y in 0..<h {
                        let source = gb.baseAddress! + o * layout.gridStride + layout.rowOffset(frame: frame, row: y)
                        let row = target + y * w
                        // x < w: one row of the grid and of the output plane.
                        if relu {
                            for x in 0..<w { row[x] = max(source[x], 0) }
                        } else {
                            row.update(from: source, count: w)
                        }
                    }
                }
            }
        }
    }
}
