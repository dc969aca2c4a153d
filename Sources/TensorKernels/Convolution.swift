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

/// 2-D convolution of `x` [N, Cin, H, W] with `weight` [Cout, Cin, kh, kw] and optional `bias` [Cout].
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?,
                   stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) -> Tensor {
    let (n, cin, h, w) = x.dims4
    let (cout, wcin, kh, kw) = weight.dims4
    precondition(wcin == cin, "conv2d: input has \(cin) channels, weight \(weight.shape) expects \(wcin)")
    let gy = AxisGeometry(input: h, kernel: kh, stride: stride.0, padding: padding.0)
    let gx = AxisGeometry(input: w, kernel: kw, stride: stride.1, padding: padding.1)
    let (ho, wo) = (gy.output, gx.output)
    let k = cin * kh * kw
    let pixels = ho * wo
    let direct = kh == 1 && kw == 1 && stride == (1, 1) && padding == (0, 0)
    var out = Tensor(shape: [n, cout, ho, wo])
    var columns = [Float](repeating: 0, count: direct ? 0 : k * pixels)
    x.data.withUnsafeBufferPointer { xb in
    weight.data.withUnsafeBufferPointer { wb in
    out.data.withUnsafeMutableBufferPointer { ob in
    columns.withUnsafeMutableBufferPointer { cb in
        for image in 0..<n {
            let src = xb.baseAddress! + image * cin * h * w
            let dst = ob.baseAddress! + image * cout * pixels
            fillBias(dst, bias: bias, channels: cout, pixels: pixels)
            let b: UnsafePointer<Float>
            if direct {
                b = src
            } else {
                im2col2d(src, channels: cin, gy: gy, gx: gx, into: cb.baseAddress!)
                b = UnsafePointer(cb.baseAddress!)
            }
            BLAS.sgemm(m: cout, n: pixels, k: k, a: wb.baseAddress!, lda: k,
                       b: b, ldb: pixels, beta: 1, c: dst, ldc: pixels)
        }
    }}}}
    return out
}

/// Writes the column matrix [Cin·kh·kw, Ho·Wo] of one image, zero where the window leaves the image.
@usableFromInline
func im2col2d(_ src: UnsafePointer<Float>, channels: Int, gy: AxisGeometry, gx: AxisGeometry,
              into cols: UnsafeMutablePointer<Float>) {
    let (ho, wo) = (gy.output, gx.output)
    let rows = channels * gy.kernel * gx.kernel
    parallelFor(rows, minimumPerThread: 8) { range in
        for row in range {
            let dx = row % gx.kernel
            let dy = (row / gx.kernel) % gy.kernel
            let c = row / (gx.kernel * gy.kernel)
            let plane = src + c * gy.input * gx.input
            let line = cols + row * ho * wo
            for oy in 0..<ho {
                let iy = oy * gy.stride - gy.padding + dy
                let outRow = line + oy * wo
                if iy < 0 || iy >= gy.input {
                    outRow.update(repeating: 0, count: wo)
                    continue
                }
                let inRow = plane + iy * gx.input
                for ox in 0..<wo {
                    let ix = ox * gx.stride - gx.padding + dx
                    // ix is checked against the row's bounds before the read.
                    outRow[ox] = (ix >= 0 && ix < gx.input) ? inRow[ix] : 0
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

/// 3-D convolution, stride 1, of frames-major video `x` [T, Cin, H, W] with `weight`
/// [Cout, Cin, kt, kh, kw] and `padding` (pt, ph, pw); the result is [T', Cout, H', W'].
public func conv3d(_ x: Tensor, weight: Tensor, bias: Tensor?, padding: (Int, Int, Int)) -> Tensor {
    let (t, cin, h, w) = x.dims4
    precondition(weight.rank == 5, "conv3d: weight must be rank 5, got \(weight.shape)")
    let (cout, wcin, kt, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3], weight.shape[4])
    precondition(wcin == cin, "conv3d: input has \(cin) channels, weight \(weight.shape) expects \(wcin)")
    let gt = AxisGeometry(input: t, kernel: kt, stride: 1, padding: padding.0)
    let gy = AxisGeometry(input: h, kernel: kh, stride: 1, padding: padding.1)
    let gx = AxisGeometry(input: w, kernel: kw, stride: 1, padding: padding.2)
    let (to, ho, wo) = (gt.output, gy.output, gx.output)
    let k = cin * kt * kh * kw
    let pixels = ho * wo
    let frameSize = cin * h * w
    var out = Tensor(shape: [to, cout, ho, wo])
    var columns = [Float](repeating: 0, count: k * pixels)
    x.data.withUnsafeBufferPointer { xb in
    weight.data.withUnsafeBufferPointer { wb in
    out.data.withUnsafeMutableBufferPointer { ob in
    columns.withUnsafeMutableBufferPointer { cb in
        for frame in 0..<to {
            let dst = ob.baseAddress! + frame * cout * pixels
            fillBias(dst, bias: bias, channels: cout, pixels: pixels)
            let cols = cb.baseAddress!
            let rowsPerChannel = kt * kh * kw
            parallelFor(cin * kt, minimumPerThread: 4) { range in
                for ct in range {
                    let c = ct / kt, dt = ct % kt
                    let it = frame - gt.padding + dt
                    for dy in 0..<kh {
                        for dx in 0..<kw {
                            let row = c * rowsPerChannel + (dt * kh + dy) * kw + dx
                            let line = cols + row * pixels
                            if it < 0 || it >= t {
                                line.update(repeating: 0, count: pixels)
                                continue
                            }
                            let plane = xb.baseAddress! + it * frameSize + c * h * w
                            for oy in 0..<ho {
                                let iy = oy - gy.padding + dy
                                let outRow = line + oy * wo
                                if iy < 0 || iy >= h {
                                    outRow.update(repeating: 0, count: wo)
                                    continue
                                }
                                let inRow = plane + iy * w
                                for ox in 0..<wo {
                                    let ix = ox - gx.padding + dx
                                    // ix is checked against the row's bounds before the read.
                                    outRow[ox] = (ix >= 0 && ix < w) ? inRow[ix] : 0
                                }
                            }
                        }
                    }
                }
            }
            BLAS.sgemm(m: cout, n: pixels, k: k, a: wb.baseAddress!, lda: k,
                       b: UnsafePointer(cols), ldb: pixels, beta: 1, c: dst, ldc: pixels)
        }
    }}}}
    return out
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
