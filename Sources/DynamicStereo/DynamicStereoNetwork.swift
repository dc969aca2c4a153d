// DynamicStereo models/core/dynamic_stereo.py: the DynamicStereo network and its cascaded refinement.
//
// Dimension letters in this file: T frames of a window (PyTorch's "(b t)" with b = 1), C channels,
// H x W the padded input size, h x w = H/4 x W/4 (the encoder's resolution).
import Foundation
import TensorKernels

/// The DynamicStereo network as the released checkpoints configure it: `num_frames=5`,
/// attention "self_stereo_temporal_update_time_update_space", 3-D update blocks, one update block per scale.
public struct DynamicStereoNetwork {
    static let hiddenDim = 128
    static let featureDim = 256
    static let attentionDepth = 4
    static let trainedFrames = 5

    let encoder: BasicEncoder
    let timeEmbedding: Tensor                // [1, 5, 256]
    let selfAttention: [LocalFeatureTransformer]
    let crossAttention: [LocalFeatureTransformer]
    let timeAttention: [TimeAttnBlock]
    let update16: SequenceUpdateBlock3D
    let update08: SequenceUpdateBlock3D
    let update04: SequenceUpdateBlock3D

    /// Binds every layer to its checkpoint tensors; call `verify()` on the store afterwards.
    public init(_ w: WeightScope) {
        encoder = BasicEncoder(w("fnet"))
        timeEmbedding = w.tensor("time_embed", [1, Self.trainedFrames, Self.featureDim])
        selfAttention = (0..<Self.attentionDepth).map { LocalFeatureTransformer(w("self_attn_blocks")($0), kind: .self) }
        crossAttention = (0..<Self.attentionDepth).map { LocalFeatureTransformer(w("cross_attn_blocks")($0), kind: .cross) }
        timeAttention = (0..<Self.attentionDepth).map { TimeAttnBlock(w("time_attn_blocks")($0)) }
        update08 = SequenceUpdateBlock3D(w("update_block08"), withAttention: false)
        update16 = SequenceUpdateBlock3D(w("update_block16"), withAttention: true)
        update04 = SequenceUpdateBlock3D(w("update_block04"), withAttention: false)
    }

    /// Builds the network from a state dict, refusing weights that do not fit (missing, unexpected, mis-shaped).
    public init(stateDict: [String: Tensor]) throws {
        let store = WeightStore(stateDict)
        self.init(store.root)
        try store.verify()
        store.release()
    }

    /// Everything the network produces for one window.
    public struct Output {
        /// The signed horizontal flow after the last iteration, [T, 1, H, W] (disparity = |flow|).
        public var flow: Tensor
        /// Each iteration's upsampled horizontal flow, when requested: 1/16, then 1/8, then 1/4 iterations.
        public var iterations: [Tensor]
    }

    /// Runs one window. `left` and `right` are [T, 3, H, W] with values in 0...255 and H, W multiples of 32.
    ///
    /// `iters / 2` iterations run at 1/16 and at 1/8, `iters` at 1/4. `isCancelled` is asked before each
    /// iteration; when it answers true the run stops with `CancellationError`.
    public func forward(left: Tensor, right: Tensor, iters: Int, keepIterations: Bool = false,
                        isCancelled: () -> Bool = { false }) throws -> Output {
        let (frames, channels, height, width) = left.dims4
        precondition(left.shape == right.shape, "left \(left.shape) and right \(right.shape) differ")
        precondition(channels == 3 && height % 32 == 0 && width % 32 == 0, "input \(left.shape) is not padded to 32")
        precondition(iters >= 2, "iters must be at least 2, got \(iters)")
        let hdim = Self.hiddenDim

        // Images to [-1, 1] in float32, as the reference: 2 * (x / 255) - 1.
        let images = Tensor.stack([left, right]).map { 2 * ($0 / 255) - 1 }
        let features = encoder(images)
        let fmap1 = features.slice(0..<frames)                  // [T, 256, h, w]
        let fmap2 = features.slice(frames..<(2 * frames))
        let (h, w) = (fmap1.shape[2], fmap1.shape[3])

        var netAndInp = splitChannels(fmap1, [hdim, hdim])
        var net04 = netAndInp[0].tanh()
        let inp04 = netAndInp[1].relu()

        let (f1dw16, f2dw16) = attentionStack(avgPool(fmap1, 4), avgPool(fmap2, 4), frames: frames)
        netAndInp = splitChannels(f1dw16, [hdim, hdim])
        var net16 = netAndInp[0].tanh()
        let inp16 = netAndInp[1].relu()

        let f1dw8 = (avgPool(fmap1, 2) + resizeBilinear(f1dw16, height: h / 2, width: w / 2)) / 2
        let f2dw8 = (avgPool(fmap2, 2) + resizeBilinear(f2dw16, height: h / 2, width: w / 2)) / 2
        netAndInp = splitChannels(f1dw8, [hdim, hdim])
        var net08 = netAndInp[0].tanh()
        let inp08 = netAndInp[1].relu()

        var iterations: [Tensor] = []
        let record: (Tensor, Int) -> Void = { upsampled, scale in
            guard keepIterations else { return }
            let x = splitChannels(upsampled, [1, 1])[0]
            iterations.append(scale > 1
                ? Float(scale) * resizeBilinear(x, height: scale * x.shape[2], width: scale * x.shape[3])
                : x)
        }

        // 1/16: from zero flow. Each stage returns the convex-upsampled flow (4x its own scale).
        var flow = Tensor(shape: [frames, 2, h / 4, w / 4])
        (flow, net16) = try refine(update16, correlation: CorrBlock1D(fmap1: f1dw16, fmap2: f2dw16),
                                   flow: flow, net: net16, inp: inp16, iters: iters / 2, frames: frames,
                                   record: { record($0, 4) }, isCancelled: isCancelled)

        // 1/8: the reference rescales by -(target / source) height, which also flips the sign.
        flow = Float(-Double(h / 2) / Double(flow.shape[2])) * resizeBilinear(flow, height: h / 2, width: w / 2)
        net08 = (net08 + resizeBilinear(net16, height: 2 * net16.shape[2], width: 2 * net16.shape[3])) / 2
        (flow, net08) = try refine(update08, correlation: CorrBlock1D(fmap1: f1dw8, fmap2: f2dw8),
                                   flow: flow, net: net08, inp: inp08, iters: iters / 2, frames: frames,
                                   record: { record($0, 2) }, isCancelled: isCancelled)

        // 1/4, with the same sign-flipping rescale.
        flow = Float(-Double(h) / Double(flow.shape[2])) * resizeBilinear(flow, height: h, width: w)
        net04 = (net04 + resizeBilinear(net08, height: 2 * net08.shape[2], width: 2 * net08.shape[3])) / 2
        (flow, _) = try refine(update04, correlation: CorrBlock1D(fmap1: fmap1, fmap2: fmap2),
                               flow: flow, net: net04, inp: inp04, iters: iters, frames: frames,
                               record: { record($0, 1) }, isCancelled: isCancelled)
        return Output(flow: splitChannels(flow, [1, 1])[0], iterations: iterations)
    }

    /// The recurrent refinement at one scale; returns the last convex-upsampled flow and the hidden state.
    private func refine(_ block: SequenceUpdateBlock3D, correlation: CorrBlock1D, flow initialFlow: Tensor,
                        net initialNet: Tensor, inp: Tensor, iters: Int, frames: Int,
                        record: (Tensor) -> Void, isCancelled: () -> Bool) throws -> (Tensor, Tensor) {
        var flow = initialFlow
        var net = initialNet
        var upsampled = flow
        for _ in 0..<iters {
            if isCancelled() { throw CancellationError() }
            let corr = correlation(flow: flow)
            let step = block(net: net, inp: inp, corr: corr, flow: flow, frames: frames)
            net = step.net
            flow = flow + step.delta
            upsampled = convexUpsample(flow, mask: step.mask, rate: 4)
            record(upsampled)
        }
        return (upsampled, net)
    }

    /// Position encoding, time embedding, then four rounds of self, cross and temporal attention at 1/16.
    func attentionStack(_ fmap1: Tensor, _ fmap2: Tensor, frames: Int) -> (Tensor, Tensor) {
        let (_, _, h, w) = fmap1.dims4
        let embedding = timeEmbedding(frames: frames)
        var f1 = addTimeEmbedding(PositionEncodingSine.add(fmap1), embedding)
        var f2 = addTimeEmbedding(PositionEncodingSine.add(fmap2), embedding)
        for round in 0..<Self.attentionDepth {
            var t1 = toTokens(f1), t2 = toTokens(f2)
            (t1, t2) = selfAttention[round](t1, t2)
            (t1, t2) = crossAttention[round](t1, t2)
            f1 = fromTokens(t1, height: h, width: w)
            f2 = fromTokens(t2, height: h, width: w)
            f1 = timeAttention[round](f1, frames: frames)
            f2 = timeAttention[round](f2, frames: frames)
        }
        return (f1, f2)
    }

    /// The learned per-frame embedding [T, 256], nearest-resampled when the window is not 5 frames long
    /// (PyTorch's "nearest": source index floor(t * 5 / T) computed in float32).
    func timeEmbedding(frames: Int) -> [[Float]] {
        let trained = Self.trainedFrames, dim = Self.featureDim
        let scale = Float(trained) / Float(frames)
        return (0..<frames).map { t in
            let source = frames == trained ? t : min(Int((Float(t) * scale).rounded(.down)), trained - 1)
            return Array(timeEmbedding.data[(source * dim)..<((source + 1) * dim)])
        }
    }

    private func addTimeEmbedding(_ x: Tensor, _ embedding: [[Float]]) -> Tensor {
        let (frames, channels, h, w) = x.dims4
        var out = x
        out.data.withUnsafeMutableBufferPointer { o in
            for t in 0..<frames {
                for c in 0..<channels {
                    let value = embedding[t][c]
                    let base = (t * channels + c) * h * w
                    for i in 0..<(h * w) { o[base + i] += value }
                }
            }
        }
        return out
    }
}

/// Convex upsampling of a flow field [N, 2, h, w] by `rate` with mask [N, 9·rate², h, w]: each output pixel is a
/// softmax-weighted combination of the 3x3 neighbourhood of `rate · flow` around its coarse pixel.
func convexUpsample(_ flow: Tensor, mask: Tensor, rate: Int) -> Tensor {
    let (n, c, h, w) = flow.dims4
    precondition(mask.shape == [n, 9 * rate * rate, h, w], "mask \(mask.shape) does not fit flow \(flow.shape)")
    let sub = rate * rate
    let (ho, wo) = (h * rate, w * rate)
    return Tensor(shape: [n, c, ho, wo]) { out in
        flow.data.withUnsafeBufferPointer { fb in
        mask.data.withUnsafeBufferPointer { mb in
            parallelFor(n * h) { rows in
                var weights = [Float](repeating: 0, count: 9)
                for row in rows {
                    let image = row / h, y = row % h
                    for x in 0..<w {
                        for s in 0..<sub {
                            let (i, j) = (s / rate, s % rate)
                            // Softmax over the 9 neighbours of mask channel k·rate² + s.
                            var peak = -Float.infinity
                            for k in 0..<9 {
                                weights[k] = mb[((image * 9 * sub + k * sub + s) * h + y) * w + x]
                                peak = max(peak, weights[k])
                            }
                            var total: Float = 0
                            for k in 0..<9 { weights[k] = expf(weights[k] - peak); total += weights[k] }
                            for channel in 0..<c {
                                let plane = fb.baseAddress! + (image * c + channel) * h * w
                                var acc: Float = 0
                                for k in 0..<9 {
                                    let (yy, xx) = (y + k / 3 - 1, x + k % 3 - 1)
                                    // Neighbours outside the field are the unfold's zero padding.
                                    guard yy >= 0, yy < h, xx >= 0, xx < w else { continue }
                                    acc += weights[k] / total * (Float(rate) * plane[yy * w + xx])
                                }
                                out[((image * c + channel) * ho + y * rate + i) * wo + x * rate + j] = acc
                            }
                        }
                    }
                }
            }
        }}
    }
}
