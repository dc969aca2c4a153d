// DynamicStereo models/core/update.py: Attention, TimeAttnBlock and SpaceAttnBlock
//
// Dimension letters: B batch of videos, T frames, N = B·T images, C channels (256), h x w the feature map,
// H heads (8), D channels per head (32). Sequences over time are per pixel: B·h·w of them, T tokens each.
import Foundation
import TensorKernels

/// update.py's `Attention`: softmax self-attention over short sequences, heads of D = C / 8 channels.
///
/// The reference declares a `qkv` projection but never applies it: queries, keys and values are all the
/// input itself split into heads. We reproduce that; the unused layer is still bound to the checkpoint
/// so that strict loading accounts for its weight.
struct TemporalAttention {
    static let heads = 8
    let projection: Linear       // proj [C, C] + [C]

    init(_ w: WeightScope, channels c: Int = 256) {
        // qkv [3C, C], no bias: present in every checkpoint, unused by the reference's forward pass.
        _ = Linear(w("qkv"), in: c, out: 3 * c, bias: false)
        projection = Linear(w("proj"), in: c, out: c)
    }

    var channels: Int { projection.outputs }

    /// Attention within each of `x`'s [sequences, T, C] sequences; the result has the same shape.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (sequences, t, c) = x.dims3
        precondition(c == channels, "TemporalAttention: input \(x.shape) for \(channels) channels")
        let heads = Self.heads
        let d = c / heads
        let scale = Float(1 / Double(d).squareRoot())
        var attended = Tensor(shape: [sequences, t, c])
        // T is a handful of frames, so plain loops beat setting up a matrix product per (sequence, head).
        x.data.withUnsafeBufferPointer { xb in
            attended.data.withUnsafeMutableBufferPointer { ob in
                parallelFor(sequences, minimumPerThread: 16) { range in
                    var weights = [Float](repeating: 0, count: t)
                    weights.withUnsafeMutableBufferPointer { a in
                        for sequence in range {
                            let base = sequence * t * c
                            for head in 0..<heads {
                                let slice = base + head * d
                                for query in 0..<t {
                                    let q = xb.baseAddress! + slice + query * c
                                    var largest = -Float.infinity
                                    for key in 0..<t {
                                        let k = xb.baseAddress! + slice + key * c
                                        var dot: Float = 0
                                        // i < d: inside this head's slice of the token.
                                        for i in 0..<d { dot += q[i] * k[i] }
                                        a[key] = dot * scale
                                        largest = max(largest, a[key])
                                    }
                                    var total: Float = 0
                                    for key in 0..<t {
                                        a[key] = exp(a[key] - largest)
                                        total += a[key]
                                    }
                                    let out = ob.baseAddress! + slice + query * c
                                    for i in 0..<d { out[i] = 0 }
                                    for key in 0..<t {
                                        let weight = a[key] / total
                                        let v = xb.baseAddress! + slice + key * c
                                        // i < d: inside this head's slice of the token.
                                        for i in 0..<d { out[i] += weight * v[i] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return projection(attended)
    }
}

/// Attention along time at every pixel: x + fc(attention(norm(x))) over each pixel's T frames.
struct TimeAttnBlock {
    let attention: TemporalAttention
    let fc: Linear            // temporal_fc [C, C] + [C]
    let norm: LayerNorm       // temporal_norm1 [C]

    /// `w` is the block's scope, e.g. `root("time_attn_blocks")(0)` or `root("update_block16")("time_attn")`.
    init(_ w: WeightScope, channels c: Int = 256) {
        attention = TemporalAttention(w("temporal_attn"), channels: c)
        fc = Linear(w("temporal_fc"), in: c, out: c)
        norm = LayerNorm(w("temporal_norm1"), channels: c)
    }

    /// `x` [(B T), C, h, w], frames-major within each video; the result has the same shape.
    func callAsFunction(_ x: Tensor, frames t: Int) -> Tensor {
        let (n, c, h, w) = x.dims4
        precondition(c == attention.channels, "TimeAttnBlock: input \(x.shape) for \(attention.channels) channels")
        precondition(t > 0 && n % t == 0, "TimeAttnBlock: \(n) images are not whole videos of \(t) frames")
        let videos = n / t
        let pixels = h * w
        // [(B h w), T, C]: one sequence per pixel of each video.
        let sequences = Tensor(shape: [videos * pixels, t, c]) { out in
            x.data.withUnsafeBufferPointer { src in
                for video in 0..<videos {
                    for frame in 0..<t {
                        let image = src.baseAddress! + (video * t + frame) * c * pixels
                        for channel in 0..<c {
                            let plane = image + channel * pixels
                            // (video·pixels + p)·t + frame < videos·pixels·t: a valid token row.
                            for p in 0..<pixels { out[((video * pixels + p) * t + frame) * c + channel] = plane[p] }
                        }
                    }
                }
            }
        }
        let update = fc(attention(norm(sequences)))
        // The residual adds the un-normalised input; scatter the sum back to [(B T), C, h, w].
        var result = x
        result.data.withUnsafeMutableBufferPointer { dst in
            update.data.withUnsafeBufferPointer { u in
                for video in 0..<videos {
                    for frame in 0..<t {
                        let image = dst.baseAddress! + (video * t + frame) * c * pixels
                        for channel in 0..<c {
                            let plane = image + channel * pixels
                            // Same index as the gather above.
                            for p in 0..<pixels { plane[p] += u[((video * pixels + p) * t + frame) * c + channel] }
                        }
                    }
                }
            }
        }
        return result
    }
}

/// Linear self-attention over the pixels of each image: one LoFTR layer with the image as its own source.
struct SpaceAttnBlock {
    let layer: LoFTREncoderLayer

    /// `w` is the block's scope, e.g. `root("update_block16")("space_attn")`; the layer is `encoder_layer`.
    init(_ w: WeightScope, channels c: Int = 256) {
        layer = LoFTREncoderLayer(w("encoder_layer"), channels: c)
    }

    /// `x` [(B T), C, h, w]; the result has the same shape. Frames do not interact, so T is not needed.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (_, c, h, w) = x.dims4
        precondition(c == layer.channels, "SpaceAttnBlock: input \(x.shape) for \(layer.channels) channels")
        let tokens = toTokens(x)
        return fromTokens(layer(tokens, source: tokens), height: h, width: w)
    }
}
