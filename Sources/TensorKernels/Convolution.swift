// 2-D and 3-D convolutions as im2col + sgemm, with plain reference loops beside them.
//
// Layouts (PyTorch's): input [N, Cin, H, W]; conv2d weight [Cout, Cin, kh, kw];
// conv3d runs on frames-major video [T, Cin, H, W] (PyTorch's "(b t) c h w" with b = 1) and takes
// the PyTorch Conv3d weight [Cout, Cin, kt, kh, kw] unchanged: its flattening (ci, dt, dy, dx) is the
// row order of our column matrix, so no layout conversion is needed.

/// Geometry of a convolution along one axis.
@usableFromInline
struct AxisGeometry {
    let input: Int, kernel: Int, stride: Int, padding: Int
    var output: Int { (input + 2 * padding - kernel) / stride + 1 }
}

/// The column matrix is built and multiplied in tiles of output pixels holding about this many bytes, so a
/// large layer never materialises its whole im2col matrix (3456 x 19200 floats, 265 MB, for the 3x3x3 flow
/// head at 480x640) and each tile stays cache-sized for sgemm.
let columnTileBytes = 8 << 20

/// Output pixels per tile for a column matrix of `rows` rows.
func columnTile(rows: Int, pixels: Int, bytes: Int) -> Int {
    min(pixels, max(1, bytes / (4 * max(rows, 1))))
}

/// 2-D convolution of `x` [N, Cin, H, W] with `weight` [Cout, Cin, kh, kw] and optional `bias` [Cout].
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?,
                   stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) -> Tensor {
    let (n, cin, h, w) = x.dims4
    let (cout, wcin, kh, kw) = weight.dims4
    precondition(wcin == cin, "conv2d: input has \(cin) channels, weight \(weight.shape) expects \(wcin)")
    let geometry = ConvolutionGeometry(
        channels: cin,
        t: AxisGeometry(input: 1, kernel: 1, stride: 1, padding: 0),
        y: AxisGeometry(input: h, kernel: kh, stride: stride.0, padding: padding.0),
        x: AxisGeometry(input: w, kernel: kw, stride: stride.1, padding: padding.1))
    var out = Tensor(shape: [n, cout, geometry.y.output, geometry.x.output])
    x.data.withUnsafeBufferPointer { xb in
    weight.data.withUnsafeBufferPointer { wb in
    out.data.withUnsafeMutableBufferPointer { ob in
        for image in 0..<n {
            geometry.convolve(xb.baseAddress! + image * cin * h * w, frame: 0, weight: wb.baseAddress!,
                              bias: bias, outputs: cout, into: ob.baseAddress! + image * cout * geometry.pixels)
        }
    }}}
    return out
}

/// 3-D convolution, stride 1, of frames-major video `x` [T, Cin, H, W] with `weight`
/// [Cout, Cin, kt, kh, kw] and `padding` (pt, ph, pw); the result is [T', Cout, H', W'].
public func conv3d(_ x: Tensor, weight: Tensor, bias: Tensor?, padding: (Int, Int, Int)) -> Tensor {
    let (t, cin, h, w) = x.dims4
    precondition(weight.rank == 5, "conv3d: weight must be rank 5, got \(weight.shape)")
    let (cout, wcin, kt, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3], weight.shape[4])
    precondition(wcin == cin, "conv3d: input has \(cin) channels, weight \(weight.shape) expects \(wcin)")
    let geometry = ConvolutionGeometry(
        channels: cin,
        t: AxisGeometry(input: t, kernel: kt, stride: 1, padding: padding.0),
        y: AxisGeometry(input: h, kernel: kh, stride: 1, padding: padding.1),
        x: AxisGeometry(input: w, kernel: kw, stride: 1, padding: padding.2))
    var out = Tensor(shape: [geometry.t.output, cout, geometry.y.output, geometry.x.output])
    x.data.withUnsafeBufferPointer { xb in
    weight.data.withUnsafeBufferPointer { wb in
    out.data.withUnsafeMutableBufferPointer { ob in
        for frame in 0..<geometry.t.output {
            geometry.convolve(xb.baseAddress!, frame: frame, weight: wb.baseAddress!, bias: bias, outputs: cout,
                              into: ob.baseAddress! + frame * cout * geometry.pixels)
        }
    }}}
    return out
}

/// One convolution's shape: input channels and the geometry along time, rows and columns
/// (time has kernel 1 for 2-D convolutions). Column-matrix rows are ordered (c, dt, dy, dx), the flattening
/// of PyTorch's [Cout, Cin, kt, kh, kw] and [Cout, Cin, kh, kw] weights.
@usableFromInline
struct ConvolutionGeometry {
    let channels: Int
    let t: AxisGeometry, y: AxisGeometry, x: AxisGeometry

    var pixels: Int { y.output * x.output }
    var rows: Int { channels * t.kernel * y.kernel * x.kernel }
    var isPointwise: Bool {
        t.kernel == 1 && y.kernel == 1 && x.kernel == 1 && y.stride == 1 && x.stride == 1 && y.padding == 0 && x.padding == 0
    }

    /// Computes output frame `frame` of the convolution of `video` ([frames, channels, H, W]) into `dst`
    /// ([outputs, pixels]), tile by tile of output pixels.
    func convolve(_ video: UnsafePointer<Float>, frame: Int, weight: UnsafePointer<Float>, bias: Tensor?,
                  outputs: Int, into dst: UnsafeMutablePointer<Float>, tileBytes: Int = columnTileBytes) {
        fillBias(dst, bias: bias, channels: outputs, pixels: pixels)
        if isPointwise && t.input == 1 {
            // A 1x1 convolution is a plain matrix product with the image itself.
            BLAS.sgemm(m: outputs, n: pixels, k: rows, a: weight, lda: rows, b: video, ldb: pixels,
                       beta: 1, c: dst, ldc: pixels)
            return
        }
        let tile = columnTile(rows: rows, pixels: pixels, bytes: tileBytes)
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: rows * tile)
        defer { columns.deallocate() }
        for start in stride(from: 0, to: pixels, by: tile) {
            let range = start..<min(pixels, start + tile)
            im2col(video, frame: frame, pixels: range, into: columns)
            BLAS.sgemm(m: outputs, n: range.count, k: rows, a: weight, lda: rows, b: columns, ldb: range.count,
                       beta: 1, c: dst + start, ldc: pixels)
        }
    }

    /// Writes the column matrix [rows, pixels.count] for output `frame` and output pixels `pixels`,
    /// zero wherever the kernel window leaves the video.
    func im2col(_ video: UnsafePointer<Float>, frame: Int, pixels: Range<Int>, into cols: UnsafeMutablePointer<Float>) {
        let (kt, ky, kx) = (t.kernel, y.kernel, x.kernel)
        let plane = y.input * x.input
        let width = pixels.count
        parallelFor(rows, minimumPerThread: 16) { range in
            for row in range {
                let dx = row % kx, dy = (row / kx) % ky, dt = (row / (kx * ky)) % kt, c = row / (kx * ky * kt)
                let line = cols + row * width
                let it = frame - t.padding + dt
                guard it >= 0, it < t.input else {
                    line.update(repeating: 0, count: width)
                    continue
                }
                let source = video + (it * channels + c) * plane
                var p = pixels.lowerBound
                while p < pixels.upperBound {
                    // One run of consecutive output pixels within an output row.
                    let oy = p / x.output, ox0 = p % x.output
                    let count = min(pixels.upperBound - p, x.output - ox0)
                    let out = line + (p - pixels.lowerBound)
                    let iy = oy * y.stride - y.padding + dy
                    if iy < 0 || iy >= y.input {
                        out.update(repeating: 0, count: count)
                    } else if x.stride == 1 {
                        // ix = ox - padding + dx is in the row for ox in [padding - dx, input + padding - dx).
                        let inRow = source + iy * x.input
                        let lo = min(max(x.padding - dx - ox0, 0), count)
                        let hi = max(min(x.input + x.padding - dx - ox0, count), lo)
                        if lo > 0 { out.update(repeating: 0, count: lo) }
                        if hi > lo { (out + lo).update(from: inRow + (ox0 + lo - x.padding + dx), count: hi - lo) }
                        if count > hi { (out + hi).update(repeating: 0, count: count - hi) }
                    } else {
                        let inRow = source + iy * x.input
                        for i in 0..<count {
                            let ix = (ox0 + i) * x.stride - x.padding + dx
                            // ix is checked against the row's bounds before the read.
                            out[i] = (ix >= 0 && ix < x.input) ? inRow[ix] : 0
                        }
                    }
                    p += count
                }
            }
        }
    }
}

/// Sets every pixel of each output channel to its bias (or zero), ready for sgemm with beta = 1.
@usableFromInline
func fillBias(_ dst: UnsafeMutablePointer<Float>, bias: Tensor?, channels: Int, pixels: Int) {
    guard let bias else {
        dst.update(repeating: 0, count: channels * pixels)
        return
    }
    precondition(bias.count == channels, "bias has \(bias.count) values for \(channels) channels")
    for c in 0..<channels {
        (dst + c * pixels).update(repeating: bias.data[c], count: pixels)
    }
}

/// Reference 2-D convolution: the definition, in plain loops with double accumulation.
public func conv2dNaive(_ x: Tensor, weight: Tensor, bias: Tensor?,
                        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) -> Tensor {
    let (n, cin, h, w) = x.dims4
    let (cout, _, kh, kw) = weight.dims4
    let ho = (h + 2 * padding.0 - kh) / stride.0 + 1
    let wo = (w + 2 * padding.1 - kw) / stride.1 + 1
    var out = Tensor(shape: [n, cout, ho, wo])
    for b in 0..<n { for o in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
        var acc = Double(bias?.data[o] ?? 0)
        for c in 0..<cin { for dy in 0..<kh { for dx in 0..<kw {
            let iy = oy * stride.0 - padding.0 + dy, ix = ox * stride.1 - padding.1 + dx
            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
            acc += Double(x.data[((b * cin + c) * h + iy) * w + ix]) * Double(weight.data[((o * cin + c) * kh + dy) * kw + dx])
        }}}
        out.data[((b * cout + o) * ho + oy) * wo + ox] = Float(acc)
    }}}}
    return out
}

/// Reference 3-D convolution on frames-major video, in plain loops with double accumulation.
public func conv3dNaive(_ x: Tensor, weight: Tensor, bias: Tensor?, padding: (Int, Int, Int)) -> Tensor {
    let (t, cin, h, w) = x.dims4
    let (cout, kt, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3], weight.shape[4])
    let to = t + 2 * padding.0 - kt + 1, ho = h + 2 * padding.1 - kh + 1, wo = w + 2 * padding.2 - kw + 1
    var out = Tensor(shape: [to, cout, ho, wo])
    for f in 0..<to { for o in 0..<cout { for oy in 0..<ho { for ox in 0..<wo {
        var acc = Double(bias?.data[o] ?? 0)
        for c in 0..<cin { for dt in 0..<kt { for dy in 0..<kh { for dx in 0..<kw {
            let it = f - padding.0 + dt, iy = oy - padding.1 + dy, ix = ox - padding.2 + dx
            guard it >= 0, it < t, iy >= 0, iy < h, ix >= 0, ix < w else { continue }
            acc += Double(x.data[((it * cin + c) * h + iy) * w + ix])
                * Double(weight.data[(((o * cin + c) * kt + dt) * kh + dy) * kw + dx])
        }}}}
        out.data[((f * cout + o) * ho + oy) * wo + ox] = Float(acc)
    }}}}
    return out
}
