// Pooling, bilinear resizing (align_corners=True), replicate padding and cropping of [N, C, H, W].

/// Average pooling with a square window equal to its stride (PyTorch F.avg_pool2d(x, k, stride=k)).
public func avgPool(_ x: Tensor, _ k: Int) -> Tensor {
    let (n, c, h, w) = x.dims4
    let (ho, wo) = (h / k, w / k)
    let scale = 1 / Float(k * k)
    return Tensor(shape: [n, c, ho, wo]) { out in
        x.data.withUnsafeBufferPointer { src in
            for p in 0..<(n * c) {
                let plane = src.baseAddress! + p * h * w
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var acc: Float = 0
                        for dy in 0..<k { for dx in 0..<k { acc += plane[(oy * k + dy) * w + ox * k + dx] } }
                        out[(p * ho + oy) * wo + ox] = acc * scale
                    }
                }
            }
        }
    }
}

/// Bilinear resize with aligned corners (PyTorch F.interpolate(mode="bilinear", align_corners=True)).
public func resizeBilinear(_ x: Tensor, height ho: Int, width wo: Int) -> Tensor {
    let (_, _, h, w) = x.dims4
    // Source coordinate of output index i: i * (in - 1) / (out - 1), as PyTorch computes it in float.
    func taps(_ outSize: Int, _ inSize: Int) -> [(Int, Int, Float)] {
        let scale: Float = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
        return (0..<outSize).map { i in
            let src = scale * Float(i)
            let i0 = min(Int(src), inSize - 1)
            let i1 = min(i0 + 1, inSize - 1)
            return (i0, i1, src - Float(i0))
        }
    }
    return interpolateBilinear(x, rows: taps(ho, h), columns: taps(wo, w))
}

/// Bilinear interpolation of every [H, W] plane of `x` ([N, C, H, W]) at the given taps: for each output row
/// (and column) the two source rows it blends and the weight of the second. The resizes differ only in how
/// they place the taps.
func interpolateBilinear(_ x: Tensor, rows ys: [(Int, Int, Float)], columns xs: [(Int, Int, Float)]) -> Tensor {
    let (n, c, h, w) = x.dims4
    let (ho, wo) = (ys.count, xs.count)
    return Tensor(shape: [n, c, ho, wo]) { out in
        x.data.withUnsafeBufferPointer { src in
            parallelFor(n * c) { range in
                for p in range {
                    let plane = src.baseAddress! + p * h * w
                    for (oy, (y0, y1, ly)) in ys.enumerated() {
                        for (ox, (x0, x1, lx)) in xs.enumerated() {
                            // y0, y1 < h and x0, x1 < w: every tap builder clamps both to the last pixel.
                            let top = (1 - lx) * plane[y0 * w + x0] + lx * plane[y0 * w + x1]
                            let bottom = (1 - lx) * plane[y1 * w + x0] + lx * plane[y1 * w + x1]
                            out[(p * ho + oy) * wo + ox] = (1 - ly) * top + ly * bottom
                        }
                    }
                }
            }
        }
    }
}

/// Padding by repeating the border pixels (PyTorch F.pad(mode="replicate")).
public func replicatePad(_ x: Tensor, left: Int, right: Int, top: Int, bottom: Int) -> Tensor {
    let (n, c, h, w) = x.dims4
    let (ho, wo) = (h + top + bottom, w + left + right)
    return Tensor(shape: [n, c, ho, wo]) { out in
        x.data.withUnsafeBufferPointer { src in
            for p in 0..<(n * c) {
                for oy in 0..<ho {
                    let iy = min(max(oy - top, 0), h - 1)
                    for ox in 0..<wo {
                        let ix = min(max(ox - left, 0), w - 1)
                        out[(p * ho + oy) * wo + ox] = src[(p * h + iy) * w + ix]
                    }
                }
            }
        }
    }
}

/// The window [top, top + height) × [left, left + width) of every plane.
public func crop(_ x: Tensor, top: Int, left: Int, height: Int, width: Int) -> Tensor {
    let (n, c, h, w) = x.dims4
    precondition(top >= 0 && left >= 0 && top + height <= h && left + width <= w, "crop outside \(x.shape)")
    return Tensor(shape: [n, c, height, width]) { out in
        x.data.withUnsafeBufferPointer { src in
            for p in 0..<(n * c) {
                for y in 0..<height {
                    (out.baseAddress! + (p * height + y) * width)
                        .update(from: src.baseAddress! + (p * h + top + y) * w + left, count: width)
                }
            }
        }
    }
}
