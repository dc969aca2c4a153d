// DynamicStereo models/core/dynamic_stereo.py: the DynamicStereo network and its cascaded refinement.
//
// Dimension letters in this file: T frames of a window (PyTorch's "(b t)" with b = 1), C channels,
// H x W the padded input size, h x w = H/4 x W/4 (the encoder's resolution).
import Foundation
import TensorKernels
import VideoPlan

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

    /// Binds every layer to its checkpoint tensors under `w`. Internal on purpose: a store that is never
    /// verified hands out zeros for what it lacks, so outside this module the network is built only through
    /// `init(stateDict:)`, which verifies.
    init(_ w: WeightScope) {
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
    /// `iters / 2` iterations run at 1/16 and at 1/8, `iters` at 1/4 (`RefinementSchedule`). `isCancelled` is
    /// asked before each iteration; when it answers true the run stops with `CancellationError`.
    /// `iterationDone(done, total)` is told after every iteration at every scale (`done` = 1...total, total =
    /// `RefinementSchedule(iters:).iterations`), so a caller can report progress that moves within a window. A
    /// `clock`, when given, collects the wall time of each stage (the benchmark's breakdown).
    public func forward(left: Tensor, right: Tensor, iters: Int, keepIterations: Bool = false,
                        clock: StageClock? = nil, isCancelled: () -> Bool = { false },
                        iterationDone: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> Output {
        let (frames, channels, height, width) = left.dims4
        precondition(left.shape == right.shape, "left \(left.shape) and right \(right.shape) differ")
        precondition(channels == 3 && height % 32 == 0 && width % 32 == 0, "input \(left.shape) is not padded to 32")
        precondition(iters >= 2, "iters must be at least 2, got \(iters)")

        // Each scale's input is consumed by its refinement, so that at 1/4 (where the iterations' working memory is
        // largest) nothing of the coarser scales is left.
        let (sixteenth, eighth, quarter) = try prepareScales(left: left, right: right, frames: frames, clock: clock,
                                                             isCancelled: isCancelled)
        var iterations: [Tensor] = []
        let record: ((Tensor, Int) -> Void)? = keepIterations ? { upsampled, rate in
            // rate: how far the scale's upsampled flow (4x the scale) is below the input resolution.
            let x = splitChannels(upsampled, [1, 1])[0]
            iterations.append(rate > 1
                ? Float(rate) * resizeBilinear(x, height: rate * x.shape[2], width: rate * x.shape[3])
                : x)
        } : nil
        let schedule = RefinementSchedule(iters: iters)
        precondition(schedule.scales.map(\.stride) == [16, 8, 4], "the cascade runs 1/16, 1/8, 1/4")
        var done = 0
        func counted() {
            done += 1
            iterationDone(done, schedule.iterations)
        }
        var state = try refine(update16, stage: .update16, consume sixteenth, after: nil, iters: schedule.scales[0].iterations,
                               frames: frames, record: record, clock: clock, isCancelled: isCancelled, iterationDone: counted)
        state = try refine(update08, stage: .update08, consume eighth, after: state, iters: schedule.scales[1].iterations,
                           frames: frames, record: record, clock: clock, isCancelled: isCancelled, iterationDone: counted)
        state = try refine(update04, stage: .update04, consume quarter, after: state, iters: schedule.scales[2].iterations,
                           frames: frames, record: record, clock: clock, isCancelled: isCancelled, iterationDone: counted)
        return Output(flow: splitChannels(state.flow, [1, 1])[0], iterations: iterations)
    }

    /// What the refinement at one scale starts from, at 1/16, 1/8 or 1/4 of the input (h x w below).
    private struct ScaleInput {
        /// What the scale's correlation volume comes from.
        enum Matching {
            /// Left and right features [T, 256, h, w], correlated when the scale's refinement starts.
            case features(Tensor, Tensor)
            /// The volume itself, built while the feature maps it comes from were alive (1/4).
            case volume(CorrBlock1D)
        }
        let matching: Matching
        /// 16, 8 or 4: the input's size over the scale's.
        let stride: Int
        let net: Tensor         // [T, 128, h, w] hidden state
        let inp: Tensor         // [T, 128, h, w] context
    }

    /// A scale's result: the last convex-upsampled flow [T, 2, 4h, 4w] and the hidden state [T, 128, h, w].
    private struct Refined {
        let flow: Tensor
        let net: Tensor
    }

    /// Encoder, attention stack and everything else derived from the 1/4-scale feature maps, including the 1/4
    /// correlation volume: the feature maps (2 x 256 x h x w floats) are released when this returns, before
    /// the iterations' working memory is needed.
    private func prepareScales(left: Tensor, right: Tensor, frames: Int, clock: StageClock?, isCancelled: () -> Bool)
        throws -> (sixteenth: ScaleInput, eighth: ScaleInput, quarter: ScaleInput) {
        // Images to [-1, 1] in float32, as the reference: 2 * (x / 255) - 1. The encoder normalises each image on
        // its own, so it runs a few images at a time: its full-resolution activations are the largest tensors of
        // the whole pass (64 x H/2 x W/2 floats per image, several alive at once).
        let (fmap1, fmap2) = clock.measure(.encoder) {
            (encodeInBatches(left), encodeInBatches(right))      // [T, 256, h, w] each
        }
        let (h, w) = (fmap1.shape[2], fmap1.shape[3])
        let (net04, inp04) = clock.measure(.other) { Self.netAndContext(fmap1) }
        let correlation04 = clock.measure(.correlationBuild) { CorrBlock1D(fmap1: fmap1, fmap2: fmap2) }

        let (f1dw16, f2dw16) = try clock.measure(.attention) {
            try cancellable(isCancelled) { attentionStack(avgPool(fmap1, 4), avgPool(fmap2, 4), frames: frames) }
        }
        let (net16, inp16) = clock.measure(.other) { Self.netAndContext(f1dw16) }

        let (f1dw8, f2dw8) = clock.measure(.other) {
            ((avgPool(fmap1, 2) + resizeBilinear(f1dw16, height: h / 2, width: w / 2)) / 2,
             (avgPool(fmap2, 2) + resizeBilinear(f2dw16, height: h / 2, width: w / 2)) / 2)
        }
        let (net08, inp08) = clock.measure(.other) { Self.netAndContext(f1dw8) }
        return (ScaleInput(matching: .features(f1dw16, f2dw16), stride: 16, net: net16, inp: inp16),
                ScaleInput(matching: .features(f1dw8, f2dw8), stride: 8, net: net08, inp: inp08),
                ScaleInput(matching: .volume(correlation04), stride: 4, net: net04, inp: inp04))
    }

    /// Images per encoder call: enough rows for sgemm to run at full speed, few enough to bound the memory
    /// of the encoder's full-resolution activations.
    static let encoderBatch = 2

    /// `images` [N, 3, H, W] in 0...255 to features [N, 256, H/4, W/4], `encoderBatch` images at a time.
    private func encodeInBatches(_ images: Tensor) -> Tensor {
        let count = images.shape[0]
        let parts = stride(from: 0, to: count, by: Self.encoderBatch).map { start in
            let batch = images.slice(start..<min(count, start + Self.encoderBatch))
            return encoder(batch.map { 2 * ($0 / 255) - 1 })
        }
        return parts.count == 1 ? parts[0] : Tensor.stack(parts)
    }

    /// The hidden state tanh(first 128 channels) and the context relu(last 128 channels) of a feature map.
    private static func netAndContext(_ features: Tensor) -> (Tensor, Tensor) {
        let parts = splitChannels(features, [hiddenDim, hiddenDim])
        return (parts[0].tanh(), parts[1].relu())
    }

    private func cancellable<Result>(_ isCancelled: () -> Bool, _ body: () -> Result) throws -> Result {
        if isCancelled() { throw CancellationError() }
        return body()
    }

    /// The recurrent refinement at one scale, from the coarser scale's result (`previous`) or, at 1/16, from zero
    /// flow. `record`, when given, receives every iteration's upsampled flow with its distance to the input
    /// resolution (4 at 1/16, 2 at 1/8, 1 at 1/4).
    ///
    /// Each iteration's upsampled flow is computed only where it is read: in the last iteration (the scale's
    /// result) and, when `record` is given, in every iteration. The mask head and the convex upsampling feed
    /// nothing else (the next iteration starts from the coarse flow and the hidden state), so skipping them
    /// elsewhere leaves every result bit for bit the same. The reference computes them in every iteration.
    private func refine(_ block: SequenceUpdateBlock3D, stage: NetworkStage, _ input: consuming ScaleInput,
                        after previous: Refined?, iters: Int, frames: Int, record: ((Tensor, Int) -> Void)?,
                        clock: StageClock?, isCancelled: () -> Bool, iterationDone: () -> Void) throws -> Refined {
        precondition(iters >= 1, "refine: needs an iteration to produce a flow")
        let (h, w) = (input.net.shape[2], input.net.shape[3])
        var flow: Tensor, net: Tensor
        if let previous {
            // The reference rescales the coarser flow by -(target / source) height, which also flips its sign, and
            // averages the hidden state with the coarser one upsampled.
            (flow, net) = clock.measure(.upsampling) {
                (Float(-Double(h) / Double(previous.flow.shape[2])) * resizeBilinear(previous.flow, height: h, width: w),
                 (input.net + resizeBilinear(previous.net, height: 2 * previous.net.shape[2],
                                             width: 2 * previous.net.shape[3])) / 2)
            }
        } else {
            (flow, net) = (Tensor(shape: [frames, 2, h, w]), input.net)
        }
        let correlation: CorrBlock1D
        switch input.matching {
        case let .features(fmap1, fmap2):
            correlation = clock.measure(.correlationBuild) { CorrBlock1D(fmap1: fmap1, fmap2: fmap2) }
        case let .volume(volume):
            correlation = volume
        }
        var upsampled = flow
        // The context's share of the GRU's convolutions is the same in every iteration: computed once here.
        let context = clock.measure(stage) { block.context(inp: input.inp, frames: frames) }
        for iteration in 0..<iters {
            if isCancelled() { throw CancellationError() }
            let corr = clock.measure(.correlationLookup) { correlation(flow: flow) }
            let step = clock.measure(stage) { block.step(net: net, context: context, corr: corr, flow: flow, frames: frames, clock: clock) }
            net = step.net
            flow = clock.measure(.other) { flow + step.delta }
            // Told as the iteration ends (after its upsampling, where it has one), whichever way it ends.
            defer { iterationDone() }
            guard record != nil || iteration == iters - 1 else { continue }
            // Mask and upsampling are per frame: long windows run them a few frames at a time.
            let (t, _, h, w) = net.dims4
            upsampled = SequenceUpdateBlock3D.inFrameChunks(frames: t, height: h, width: w) { frames in
                let (chunkNet, chunkFlow) = frames.count == t ? (net, flow) : (net.slice(frames), flow.slice(frames))
                let mask = clock.measure(stage) { block.upsamplingMask(chunkNet, clock: clock) }
                return clock.measure(.upsampling) { convexUpsample(chunkFlow, mask: mask, rate: 4) }
            }
            record?(upsampled, input.stride / 4)
        }
        return Refined(flow: upsampled, net: net)
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
