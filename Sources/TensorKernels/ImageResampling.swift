// Resizing whole images of [N, C, H, W] with pixel-area geometry: area averaging down (OpenCV's INTER_AREA,
// PIL's BOX) and bilinear with half-pixel centres (PyTorch align_corners=False). Both treat pixel i as the
// interval [i, i+1), so a downscale followed by an upscale lines the images up again.

/// The input pixels one output pixel covers when `inSize` pixels are averaged into `outSize`: output i spans
/// [i·s, (i+1)·s) with s = in/out, and each input pixel weighs the length of its overlap with that span / s.
func areaTaps(inSize: Int, outSize: Int) -> [(first: Int, weights: [Float])] {
    precondition(inSize > 0 && outSize > 0, "area resize \(inSize) -> \(outSize)")
    let s = Double(inSize) / Double(outSize)
    return (0..<outSize).map { i in
        let lo = Double(i) * s, hi = Double(i + 1) * s
        let first = Int(lo.rounded(.down)), last = min(inSize - 1, Int((hi - 1e-9).rounded(.down)))
        let weights = (first...last).map { j in Float((min(hi, Double(j + 1)) - max(lo, Double(j))) / s) }
        return (first, weights)
    }
}

/// Area-averaging resize (each output pixel is the mean of the input area it covers), meant for shrinking;
/// separable: a horizontal pass into a [H, Wo] buffer, then a vertical one. Time goes into the two inner
/// sums, each as long as the scale factor.
public func resizeArea(_ x: Tensor, height ho: Int, width wo: Int) -> Tensor {
    let (n, c, h, w) = x.dims4
    let xs = areaTaps(inSize: w, outSize: wo), ys = areaTaps(inSize: h, outSize: ho)
    return Tensor(shape: [n, c, ho, wo]) { out in
        x.data.withUnsafeBufferPointer { src in
            parallelFor(n * c) { planes in
                var rows = [Float](repeating: 0, count: h * wo)
                for p in planes {
                    let plane = src.baseAddress! + p * h * w
                    for y in 0..<h {
                        for (ox, tap) in xs.enumerated() {
                            var acc: Float = 0
                            // first + k < w: areaTaps keeps every tap inside the input.
                            for (k, weight) in tap.weights.enumerated() { acc += weight * plane[y * w + tap.first + k] }
                            rows[y * wo + ox] = acc
                        }
                    }
                    for (oy, tap) in ys.enumerated() {
                        for ox in 0..<wo {
                            var acc: Float = 0
                            for (k, weight) in tap.weights.enumerated() { acc += weight * rows[(tap.first + k) * wo + ox] }
                            out[(p * ho + oy) * wo + ox] = acc
                        }
                    }
                }
            }
        }
    }
}

/// The plain form of `resizeArea`: every output pixel sums every input pixel times the area of their overlap.
/// Quadratic in the image size; for tests only.
public func resizeAreaReference(_ x: Tensor, height ho: Int, width wo: Int) -> Tensor {
    let (n, c, h, w) = x.dims4
    let sy = Double(h) / Double(ho), sx = Double(w) / Double(wo)
    func overlap(_ a0: Double, _ a1: Double, _ b0: Double, _ b1: Double) -> Double { max(0, min(a1, b1) - max(a0, b0)) }
    var out = [Float](repeating: 0, count: n * c * ho * wo)
    for p in 0..<(n * c) {
        for oy in 0..<ho {
            for ox in 0..<wo {
                var acc = 0.0
                for y in 0..<h {
                    let wy = overlap(Double(oy) * sy, Double(oy + 1) * sy, Double(y), Double(y + 1))
                    if wy == 0 { continue }
                    for xx in 0..<w {
                        let wx = overlap(Double(ox) * sx, Double(ox + 1) * sx, Double(xx), Double(xx + 1))
                        acc += wy * wx * Double(x.data[(p * h + y) * w + xx])
                    }
                }
                out[(p * ho + oy) * wo + ox] = Float(acc / (sx * sy))
            }
        }
    }
    return Tensor(shape: [n, c, ho, wo], data: out)
}

/// Bilinear resize with half-pixel centres (PyTorch F.interpolate(mode="bilinear", align_corners=False)):
/// output i samples the input at (i + 0.5)·in/out − 0.5, clamped to the border.
public func resizeBilinearHalfPixel(_ x: Tensor, height ho: Int, width wo: Int) -> Tensor {
    let (_, _, h, w) = x.dims4
    func taps(_ outSize: Int, _ inSize: Int) -> [(Int, Int, Float)] {
        let scale = Double(inSize) / Double(outSize)
        return (0..<outSize).map { i in
            let src = max(0, (Double(i) + 0.5) * scale - 0.5)
            let i0 = min(Int(src), inSize - 1)
            let i1 = min(i0 + 1, inSize - 1)
            return (i0, i1, Float(src - Double(i0)))
        }
    }
    return interpolateBilinear(x, rows: taps(ho, h), columns: taps(wo, w))
}
