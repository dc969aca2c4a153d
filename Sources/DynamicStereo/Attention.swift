// DynamicStereo models/core/attention.py: PositionEncodingSine, linear attention, LoFTREncoderLayer, LocalFeatureTransformer
//
// Dimension letters: N batch (frames, (b t)), C channels (256), L query tokens, S key/value tokens,
// H heads (8), D channels per head (32), h x w the spatial size of a feature map.
import Foundation
import TensorKernels

/// The 2-D sinusoidal position encoding of LoFTR, in its corrected (`temp_bug_fix=True`) form.
///
/// Channel group `g` (channels 4g ..< 4g + 4) holds sin(x·f), cos(x·f), sin(y·f), cos(y·f) with
/// f = exp(2g · -ln(10000) / (C/2)) and x, y the 1-based column and row of the pixel.
enum PositionEncodingSine {
    /// `x` [N, C, h, w] plus the encoding of an h x w map; C must be a multiple of 4.
    static func add(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = x.dims4
        precondition(c % 4 == 0, "PositionEncodingSine: \(c) channels is not a multiple of 4")
        let pe = encoding(channels: c, height: h, width: w)
        var out = x
        let plane = c * h * w
        out.data.withUnsafeMutableBufferPointer { o in
            pe.data.withUnsafeBufferPointer { p in
                for image in 0..<n {
                    let base = image * plane
                    // base + i < n * plane = o.count.
                    for i in 0..<plane { o[base + i] += p[i] }
                }
            }
        }
        return out
    }

    /// The encoding [C, h, w] alone.
    ///
    /// The reference builds it in float32: the frequency is exp of a float32 product, the angle a float32
    /// product of position and frequency. Rounding the same intermediates to Float keeps us within an ulp of
    /// it even at large positions, where an angle computed in double would differ by up to 1e-5.
    static func encoding(channels c: Int, height h: Int, width w: Int) -> Tensor {
        let groups = c / 4
        let step = Float(-log(10000.0) / Double(c / 2))
        let frequencies = (0..<groups).map { g in Float(exp(Double(Float(2 * g) * step))) }
        var pe = Tensor(shape: [c, h, w])
        let plane = h * w
        pe.data.withUnsafeMutableBufferPointer { p in
            for g in 0..<groups {
                let f = frequencies[g]
                let sinX = p.baseAddress! + (4 * g) * plane
                let cosX = sinX + plane, sinY = cosX + plane, cosY = sinY + plane
                for y in 0..<h {
                    let angleY = Double(Float(y + 1) * f)
                    let (sy, cy) = (Float(sin(angleY)), Float(cos(angleY)))
                    for x in 0..<w {
                        let angleX = Double(Float(x + 1) * f)
                        let i = y * w + x
                        sinX[i] = Float(sin(angleX))
                        cosX[i] = Float(cos(angleX))
                        sinY[i] = sy
                        cosY[i] = cy
                    }
                }
            }
        }
        return pe
    }
}

/// [N, C, h, w] feature maps to [N, h·w, C] token sequences (row-major pixels), as attention wants them.
func toTokens(_ x: Tensor) -> Tensor {
    let (n, c, h, w) = x.dims4
    let pixels = h * w
    return Tensor(shape: [n, pixels, c]) { out in
        x.data.withUnsafeBufferPointer { src in
            for image in 0..<n {
                let from = src.baseAddress! + image * c * pixels
                let to = out.baseAddress! + image * pixels * c
                for channel in 0..<c {
                    // channel * pixels + p < c * pixels: inside this image's slab.
                    for p in 0..<pixels { to[p * c + channel] = from[channel * pixels + p] }
                }
            }
        }
    }
}

/// [N, h·w, C] token sequences back to [N, C, h, w] feature maps; the inverse of `toTokens`.
func fromTokens(_ x: Tensor, height h: Int, width w: Int) -> Tensor {
    let (n, pixels, c) = x.dims3
    precondition(pixels == h * w, "fromTokens: \(pixels) tokens do not make a \(h)x\(w) map")
    return Tensor(shape: [n, c, h, w]) { out in
        x.data.withUnsafeBufferPointer { src in
            for image in 0..<n {
                let from = src.baseAddress! + image * pixels * c
                let to = out.baseAddress! + image * c * pixels
                for p in 0..<pixels {
                    // p * c + channel < pixels * c: inside this image's slab.
                    for channel in 0..<c { to[channel * pixels + p] = from[p * c + channel] }
                }
            }
        }
    }
}

/// Multi-head linear attention ("Transformers are RNNs") with the elu + 1 feature map.
///
/// `queries` [N, L, C], `keys` and `values` [N, S, C], heads of `C / heads` channels interleaved in C as
/// PyTorch's `view(N, L, H, D)` lays them. For each head, out_l = φ(q_l)ᵀ (Σ_s φ(k_s) v_sᵀ) / (φ(q_l)ᵀ Σ_s φ(k_s) + ε):
/// the D x D summary replaces the L x S attention matrix, so memory is O((L + S)·C).
func linearAttention(queries: Tensor, keys: Tensor, values: Tensor, heads: Int, eps: Float = 1e-6) -> Tensor {
    let (n, l, c) = queries.dims3
    let (kn, s, kc) = keys.dims3
    precondition(kn == n && kc == c && values.shape == keys.shape,
                 "linearAttention: queries \(queries.shape), keys \(keys.shape), values \(values.shape)")
    precondition(heads > 0 && c % heads == 0, "linearAttention: \(c) channels do not split into \(heads) heads")
    let d = c / heads
    let q = queries.eluPlusOne()
    let k = keys.eluPlusOne()
    // The reference divides the values by S before the sums and multiplies the result back (against fp16
    // overflow); we keep both steps so the float32 rounding follows it.
    let length = Float(s)
    let v = values / length
    var out = Tensor(shape: [n, l, c])
    var summary = [Float](repeating: 0, count: d * d)       // [D, D] per head: Σ_s φ(k_s) v_sᵀ
    var keySum = [Float](repeating: 0, count: d)            // [D] per head: Σ_s φ(k_s)
    var normaliser = [Float](repeating: 0, count: l)        // [L] per head: S / (φ(q_l)ᵀ keySum + ε)
    q.data.withUnsafeBufferPointer { qb in
    k.data.withUnsafeBufferPointer { kb in
    v.data.withUnsafeBufferPointer { vb in
    out.data.withUnsafeMutableBufferPointer { ob in
    summary.withUnsafeMutableBufferPointer { kv in
    keySum.withUnsafeMutableBufferPointer { ks in
    normaliser.withUnsafeMutableBufferPointer { z in
        for batch in 0..<n {
            let qBase = qb.baseAddress! + batch * l * c
            let kBase = kb.baseAddress! + batch * s * c
            let vBase = vb.baseAddress! + batch * s * c
            let oBase = ob.baseAddress! + batch * l * c
            for head in 0..<heads {
                let qh = qBase + head * d, kh = kBase + head * d, vh = vBase + head * d, oh = oBase + head * d
                // summary [D, D] = φ(K_h)ᵀ [D, S] · V_h [S, D]; rows of K_h and V_h are C apart.
                BLAS.sgemm(transA: true, m: d, n: d, k: s, a: kh, lda: c, b: vh, ldb: c,
                           c: kv.baseAddress!, ldc: d)
                for i in 0..<d { ks[i] = 0 }
                for token in 0..<s {
                    let row = kh + token * c
                    // i < d and head * d + d <= c: inside this token's row.
                    for i in 0..<d { ks[i] += row[i] }
                }
                for token in 0..<l {
                    let row = qh + token * c
                    var dot: Float = 0
                    // i < d: inside this head's slice of the row.
                    for i in 0..<d { dot += row[i] * ks[i] }
                    z[token] = 1 / (dot + eps)
                }
                // out_h [L, D] = φ(Q_h) [L, D] · summary [D, D], then each row scaled by its normaliser and S.
                BLAS.sgemm(m: l, n: d, k: d, a: qh, lda: c, b: UnsafePointer(kv.baseAddress!), ldb: d,
                           c: oh, ldc: c)
                for token in 0..<l {
                    let row = oh + token * c
                    let scale = z[token]
                    // i < d: inside this head's slice of the row.
                    for i in 0..<d { row[i] = row[i] * scale * length }
                }
            }
        }
    }}}}}}}
    return out
}

/// Concatenates [N, L, Ca] and [N, L, Cb] along the last axis.
func concatLastAxis(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (n, l, ca) = a.dims3
    let (bn, bl, cb) = b.dims3
    precondition(bn == n && bl == l, "concatLastAxis: \(a.shape) beside \(b.shape)")
    let c = ca + cb
    return Tensor(shape: [n, l, c]) { out in
        a.data.withUnsafeBufferPointer { ab in
            b.data.withUnsafeBufferPointer { bb in
                for row in 0..<(n * l) {
                    let to = out.baseAddress! + row * c
                    to.update(from: ab.baseAddress! + row * ca, count: ca)
                    (to + ca).update(from: bb.baseAddress! + row * cb, count: cb)
                }
            }
        }
    }
}

/// One LoFTR transformer layer with linear attention: x attends to `source`, then an MLP on [x, message].
///
/// x + norm2(mlp([x, norm1(merge(attention(q(x), k(source), v(source))))])), 8 heads of 32 channels,
/// no biases in the projections or the MLP.
struct LoFTREncoderLayer {
    static let heads = 8
    let queryProjection: Linear   // q_proj [C, C]
    let keyProjection: Linear     // k_proj [C, C]
    let valueProjection: Linear   // v_proj [C, C]
    let merge: Linear             // [C, C]
    let norm1: LayerNorm          // [C]
    let mlpHidden: Linear         // mlp.0 [2C, 2C]
    let mlpOut: Linear            // mlp.2 [C, 2C]
    let norm2: LayerNorm          // [C]

    init(_ w: WeightScope, channels c: Int = 256) {
        queryProjection = Linear(w("q_proj"), in: c, out: c, bias: false)
        keyProjection = Linear(w("k_proj"), in: c, out: c, bias: false)
        valueProjection = Linear(w("v_proj"), in: c, out: c, bias: false)
        merge = Linear(w("merge"), in: c, out: c, bias: false)
        norm1 = LayerNorm(w("norm1"), channels: c)
        mlpHidden = Linear(w("mlp")(0), in: 2 * c, out: 2 * c, bias: false)
        mlpOut = Linear(w("mlp")(2), in: 2 * c, out: c, bias: false)
        norm2 = LayerNorm(w("norm2"), channels: c)
    }

    var channels: Int { merge.outputs }

    /// `x` [N, L, C] attending to `source` [N, S, C]; the result is [N, L, C].
    func callAsFunction(_ x: Tensor, source: Tensor) -> Tensor {
        let (n, _, c) = x.dims3
        let (sn, _, sc) = source.dims3
        precondition(c == channels && sc == channels && sn == n,
                     "LoFTREncoderLayer: x \(x.shape), source \(source.shape) for \(channels) channels")
        var message = linearAttention(queries: queryProjection(x), keys: keyProjection(source),
                                      values: valueProjection(source), heads: Self.heads)
        message = norm1(merge(message))
        message = mlpHidden(concatLastAxis(x, message)).relu()
        message = norm2(mlpOut(message))
        return x + message
    }
}

/// A LoFTR transformer of one layer, used as self-attention within each view or cross-attention between views.
struct LocalFeatureTransformer {
    /// Which sources the layer's two calls attend to.
    enum Kind {
        /// Each view attends to itself.
        case `self`
        /// The left view attends to the right, then the right to the updated left.
        case cross
    }

    let kind: Kind
    let layer: LoFTREncoderLayer

    /// `w` is the scope of one block, e.g. `root("self_attn_blocks")(0)`; its layer lives under `layers.0`.
    init(_ w: WeightScope, kind: Kind) {
        self.kind = kind
        layer = LoFTREncoderLayer(w("layers")(0))
    }

    /// Left and right tokens [N, L, C] and [N, S, C] in, both updated out.
    func callAsFunction(_ feat0: Tensor, _ feat1: Tensor) -> (Tensor, Tensor) {
        precondition(feat0.rank == 3 && feat1.rank == 3 && feat0.shape[0] == feat1.shape[0]
                     && feat0.shape[2] == layer.channels && feat1.shape[2] == layer.channels,
                     "LocalFeatureTransformer: feat0 \(feat0.shape), feat1 \(feat1.shape) for \(layer.channels) channels")
        switch kind {
        case .`self`:
            return (layer(feat0, source: feat0), layer(feat1, source: feat1))
        case .cross:
            // The reference reassigns feat0 before the second call, so the right view attends to the new left.
            let left = layer(feat0, source: feat1)
            return (left, layer(feat1, source: left))
        }
    }
}
