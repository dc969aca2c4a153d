// DynamicStereo models/core/corr.py: CorrBlock1D, with its bilinear sampler and coordinate grid.
//
// Dimension letters used in this file: N images (frames of a window), C feature channels, H rows,
// W1 columns of the left feature map, W2 columns of the right one (equal in the network), L pyramid levels.
import TensorKernels

/// Row-wise all-pairs correlation of two feature maps, pooled into a pyramid along the right map's
/// columns, and looked up in a window of `2·radius + 1` taps around the current disparity estimate.
///
/// Stereo pairs are rectified, so a left pixel only matches pixels on the same row of the right image:
/// the volume is 4-D, `[N, H, W1, W2]`, not 6-D as in optical flow. The same type serves the 1/16, 1/8
/// and 1/4 scales of the network.
struct CorrBlock1D {
    let levels: Int
    let radius: Int
    let batch: Int, height: Int, width1: Int

    /// Level l holds `[N, H, W1, W2 >> l]`: one correlation line per left pixel, averaged over
    /// pairs of right columns l times (flooring odd widths, as avg_pool2d does).
    let pyramid: [Tensor]

    /// Builds the volume from `fmap1` [N, C, H, W1] (left) and `fmap2` [N, C, H, W2] (right).
    init(fmap1: Tensor, fmap2: Tensor, levels: Int = 4, radius: Int = 4) {
        let (n, c, h, w1) = fmap1.dims4
        let (n2, c2, h2, _) = fmap2.dims4
        precondition(n == n2 && c == c2 && h == h2,
                     "CorrBlock1D: feature maps \(fmap1.shape) and \(fmap2.shape) do not pair up")
        precondition(c > 0 && levels >= 1 && radius >= 0,
                     "CorrBlock1D: needs channels, a level and a radius (C \(c), levels \(levels), radius \(radius))")
        self.levels = levels
        self.radius = radius
        (batch, height, width1) = (n, h, w1)
        var pyramid = [CorrBlock1D.allPairs(fmap1, fmap2)]
        for _ in 1..<levels {
            pyramid.append(CorrBlock1D.halveColumns(pyramid[pyramid.count - 1]))
        }
        self.pyramid = pyramid
    }

    /// The correlation taps around `flow` [N, 2, H, W1] (only channel 0, the horizontal component,
    /// is read): `[N, L·(2r+1), H, W1]`, level-major, taps from -r to r within a level.
    func callAsFunction(flow: Tensor) -> Tensor {
        let (n, fc, h, w1) = flow.dims4
        precondition(n == batch && h == height && w1 == width1 && fc >= 1,
                     "CorrBlock1D: flow \(flow.shape) does not match the volume [\(batch), 2, \(height), \(width1)]")
        let taps = 2 * radius + 1
        let outChannels = levels * taps
        let plane = h * w1
        var out = Tensor(shape: [n, outChannels, h, w1])
        out.data.withUnsafeMutableBufferPointer { ob in
        flow.data.withUnsafeBufferPointer { fb in
            for level in 0..<levels {
                let width = pyramid[level].shape[3]
                let firstChannel = level * taps
                pyramid[level].data.withUnsafeBufferPointer { vb in
                    // One task per image row: each writes its own (image, row) of this level's channels.
                    parallelFor(n * h, minimumPerThread: 4) { rows in
                        for row in rows {
                            let (image, y) = (row / h, row % h)
                            let flowRow = fb.baseAddress! + (image * fc * h + y) * w1
                            let outRow = ob.baseAddress! + (image * outChannels + firstChannel) * plane + y * w1
                            guard width > 0 else {
                                for k in 0..<taps { (outRow + k * plane).update(repeating: 0, count: w1) }
                                continue
                            }
                            for x1 in 0..<w1 {
                                // coords_grid's x plus the horizontal flow: where this pixel's match is thought to be.
                                let centre = (Float(x1) + flowRow[x1]) / Float(1 << level)
                                // The correlation line of left pixel (image, y, x1) at this level.
                                let line = vb.baseAddress! + ((image * h + y) * w1 + x1) * width
                                for k in 0..<taps {
                                    let x = Float(k - radius) + centre
                                    outRow[k * plane + x1] = CorrBlock1D.sample(line, width: width, at: x)
                                }
                            }
                        }
                    }
                }
            }
        }}
        return out
    }

    /// Linear interpolation of a 1 × `width` image at column `x`, exactly as
    /// `F.grid_sample(align_corners=True, padding_mode="zeros")` computes it on CPU.
    ///
    /// The coordinate goes through the normalised form 2x/(W-1) - 1 and back, (g + 1)·((W-1)/2),
    /// because that round trip is what the reference does and its rounding shows at the 1e-6 level.
    /// Taps outside 0..<width count as zero, so a point between -1 and 0 is weighted by tap 0 alone.
    /// A width of 1 divides by zero there; the reference then samples nothing, and so do we (NaN, the
    /// infinities and far-away points all fall through the range check before any integer conversion).
    @inline(__always)
    static func sample(_ line: UnsafePointer<Float>, width: Int, at x: Float) -> Float {
        let span = Float(width - 1)
        let normalised = 2 * x / span - 1
        let ix = (normalised + 1) * (span / 2)
        let west = ix.rounded(.down)
        guard west >= -1, west <= span else { return 0 }
        let i = Int(west)
        let eastWeight = ix - west
        let westWeight = 1 - eastWeight
        // i is in -1...width-1 by the guard above; each tap is read only when it lies in the line.
        let westValue: Float = i >= 0 ? line[i] : 0
        let eastValue: Float = i + 1 < width ? line[i + 1] : 0
        return westValue * westWeight + eastValue * eastWeight
    }

    /// corr[n, y, x1, x2] = Σ_c f1[n, c, y, x1] · f2[n, c, y, x2] / √C, `[N, H, W1, W2]`.
    ///
    /// Each (image, row) is one sgemm, Aᵀ·B with A the row's [C, W1] slice of `fmap1` (leading
    /// dimension H·W1) and B the [C, W2] slice of `fmap2`: no transposed copy of either map is made.
    static func allPairs(_ fmap1: Tensor, _ fmap2: Tensor) -> Tensor {
        let (n, c, h, w1) = fmap1.dims4
        let w2 = fmap2.shape[3]
        // The reference divides by sqrt(C) after the product; dividing (not multiplying by the
        // reciprocal) keeps the rounding identical when √C is not a power of two.
        let root = Float(c).squareRoot()
        var out = Tensor(shape: [n, h, w1, w2])
        fmap1.data.withUnsafeBufferPointer { ab in
        fmap2.data.withUnsafeBufferPointer { bb in
        out.data.withUnsafeMutableBufferPointer { ob in
            guard ob.count > 0 else { return }
            for image in 0..<n {
                for y in 0..<h {
                    let a = ab.baseAddress! + image * c * h * w1 + y * w1
                    let b = bb.baseAddress! + image * c * h * w2 + y * w2
                    let block = ob.baseAddress! + (image * h + y) * w1 * w2
                    BLAS.sgemm(transA: true, m: w1, n: w2, k: c, a: a, lda: h * w1, b: b, ldb: h * w2,
                               c: block, ldc: w2)
                    for i in 0..<(w1 * w2) { block[i] = block[i] / root }
                }
            }
        }}}
        return out
    }

    /// Reference for `allPairs`: the definition in plain loops with double accumulation.
    static func allPairsNaive(_ fmap1: Tensor, _ fmap2: Tensor) -> Tensor {
        let (n, c, h, w1) = fmap1.dims4
        let w2 = fmap2.shape[3]
        var out = Tensor(shape: [n, h, w1, w2])
        for image in 0..<n { for y in 0..<h { for x1 in 0..<w1 { for x2 in 0..<w2 {
            var acc = 0.0
            for ch in 0..<c {
                acc += Double(fmap1.data[((image * c + ch) * h + y) * w1 + x1])
                    * Double(fmap2.data[((image * c + ch) * h + y) * w2 + x2])
            }
            out.data[((image * h + y) * w1 + x1) * w2 + x2] = Float(acc / Double(c).squareRoot())
        }}}}
        return out
    }

    /// Averages pairs of columns of the last axis: `[..., W]` to `[..., W/2]` (avg_pool2d over [1, 2]).
    static func halveColumns(_ volume: Tensor) -> Tensor {
        let width = volume.shape[volume.rank - 1]
        let half = width / 2
        let lines = width == 0 ? 0 : volume.count / width
        var shape = volume.shape
        shape[shape.count - 1] = half
        return Tensor(shape: shape) { out in
            volume.data.withUnsafeBufferPointer { src in
                for line in 0..<lines {
                    for j in 0..<half {
                        // avg_pool2d sums the window, then divides by its size.
                        out[line * half + j] = (src[line * width + 2 * j] + src[line * width + 2 * j + 1]) / 2
                    }
                }
            }
        }
    }
}
