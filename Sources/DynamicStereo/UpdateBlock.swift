// DynamicStereo models/core/update.py: SequenceUpdateBlock3D and its parts (BasicMotionEncoder,
// SepConvGRU3D, FlowHead3D, the mask head).
//
// Dimension letters: T frames, C channels, H rows, W columns. Every tensor here is frames-major video,
// [T, C, H, W], i.e. PyTorch's "(b t) c h w" with b = 1. TensorKernels' conv3d works on that layout
// directly with the PyTorch Conv3d weight [Cout, Cin, kt, kh, kw], so the reference's rearrangements to
// "b c t h w" and back have no counterpart here.
import Foundation
import TensorKernels

/// One refinement step of the disparity at one scale: encodes the correlation and the current flow,
/// mixes them into the hidden state with a separable 3-D GRU over (width, height, time), and predicts a
/// flow update and the convex-upsampling mask.
///
/// The network holds three of these (`update_block16`, `update_block08`, `update_block04`); only the
/// 1/16 one has the temporal and spatial attention between the motion encoder and the GRU.
struct SequenceUpdateBlock3D {
    static let hiddenChannels = 128
    static let correlationChannels = 4 * 9
    /// Channels of the convex-upsampling mask: (upsampling factor 4)² × 3×3 neighbours.
    static let maskChannels = 4 * 4 * 9

    let encoder: BasicMotionEncoder
    let gru: SepConvGRU3D
    let flowHead: FlowHead3D
    let mask: MaskHead
    /// update_block16 only: temporal then spatial attention over the GRU's input features.
    let attention: (time: TimeAttnBlock, space: SpaceAttnBlock)?

    /// Binds the block's weights under `w` (for example `root("update_block16")`).
    init(_ w: WeightScope, withAttention: Bool) {
        encoder = BasicMotionEncoder(w("encoder"))
        gru = SepConvGRU3D(w("gru"), splitsContext: !withAttention)
        flowHead = FlowHead3D(w("flow_head"))
        mask = MaskHead(w("mask"))
        attention = withAttention ? (TimeAttnBlock(w("time_attn")), SpaceAttnBlock(w("space_attn"))) : nil
    }

    /// What the block needs of the context features `inp` [T, 128, H, W] in every iteration at one scale:
    /// `inp` itself, and (blocks without attention) its share of the GRU's convolutions, computed once.
    struct Context {
        /// The context features themselves, kept only where the attention needs them in every iteration.
        let inp: Tensor?
        let shape: [Int]
        let gru: SepConvGRU3D.Context?
    }

    /// Prepares `inp` [T, 128, H, W] for the iterations at one scale.
    func context(inp: Tensor, frames: Int) -> Context {
        let (t, c, _, _) = inp.dims4
        precondition(t == frames && c == Self.hiddenChannels, "SequenceUpdateBlock3D: inp \(inp.shape)")
        return gru.splitsContext ? Context(inp: nil, shape: inp.shape, gru: gru.context(inp: inp))
            : Context(inp: inp, shape: inp.shape, gru: nil)
    }

    /// One update: `net` [T, 128, H, W] hidden state, `inp` [T, 128, H, W] context features,
    /// `corr` [T, 36, H, W] correlation taps, `flow` [T, 2, H, W] current flow.
    /// Returns the new hidden state, the upsampling mask [T, 144, H, W] (already scaled by 0.25, as the
    /// reference scales it "to balance gradients") and the flow update `delta` [T, 2, H, W].
    func callAsFunction(net: Tensor, inp: Tensor, corr: Tensor, flow: Tensor, frames: Int)
        -> (net: Tensor, mask: Tensor, delta: Tensor) {
        self(net: net, context: context(inp: inp, frames: frames), corr: corr, flow: flow, frames: frames)
    }

    /// One update with the context prepared by `context(inp:frames:)`.
    func callAsFunction(net: Tensor, context: Context, corr: Tensor, flow: Tensor, frames: Int,
                        clock: StageClock? = nil) -> (net: Tensor, mask: Tensor, delta: Tensor) {
        let (newNet, delta) = step(net: net, context: context, corr: corr, flow: flow, frames: frames, clock: clock)
        return (newNet, upsamplingMask(newNet, clock: clock), delta)
    }

    /// The convex-upsampling mask [T, 144, H, W] of a new hidden state, already scaled by 0.25.
    ///
    /// Apart from `callAsFunction`, so that the refinement can skip it in iterations whose upsampled flow
    /// nobody reads: it depends on the hidden state alone and feeds nothing but the upsampling.
    func upsamplingMask(_ newNet: Tensor, clock: StageClock? = nil) -> Tensor {
        clock.measure(.maskHead) { mask(newNet) * 0.25 }
    }

    /// One update without the mask: the new hidden state and the flow update `delta` [T, 2, H, W].
    func step(net: Tensor, context: Context, corr: Tensor, flow: Tensor, frames: Int,
              clock: StageClock? = nil) -> (net: Tensor, delta: Tensor) {
        let (t, hc, h, w) = net.dims4
        let hidden = Self.hiddenChannels
        precondition(hc == hidden && t == frames,
                     "SequenceUpdateBlock3D: net \(net.shape) is not [\(frames), \(hidden), H, W]")
        precondition(context.shape == [t, hidden, h, w], "SequenceUpdateBlock3D: inp \(context.shape), net \(net.shape)")
        precondition(corr.shape == [t, Self.correlationChannels, h, w],
                     "SequenceUpdateBlock3D: corr \(corr.shape), net \(net.shape)")
        precondition(flow.shape == [t, 2, h, w], "SequenceUpdateBlock3D: flow \(flow.shape), net \(net.shape)")

        // The motion encoder is per frame: long windows run it a few frames at a time (see inFrameChunks).
        let motion = clock.measure(.motionEncoder) {                                     // [T, 128, H, W]
            Self.inFrameChunks(frames: t, height: h, width: w) { frames in
                frames.count == t ? encoder(flow: flow, corr: corr)
                    : encoder(flow: flow.slice(frames), corr: corr.slice(frames))
            }
        }
        let newNet: Tensor                                           // [T, 128, H, W]
        if let attention, let inp = context.inp {
            let features = clock.measure(.updateAttention) {
                attention.space(attention.time(concatChannels([inp, motion]), frames: frames))   // [T, 256, H, W]
            }
            newNet = clock.measure(.gru) { gru.run(h: net, input: features, context: nil) }
        } else {
            // The GRU's input is cat[inp, motion]; inp's share is already in the context.
            newNet = clock.measure(.gru) { gru.run(h: net, input: motion, context: context.gru) }
        }
        let delta = clock.measure(.flowHead) { flowHead(newNet) }                  // [T, 2, H, W]
        return (newNet, delta)
    }
}

extension SequenceUpdateBlock3D {
    /// Pixels of consecutive frames a per-frame layer processes at once in `inFrameChunks`: 5 frames at 1/4 of
    /// 480x640. Windows up to that size run in one piece (the sgemms are as wide as before); longer ones run
    /// in chunks, which bounds the layers' temporaries (the motion encoder's reach 1.4 GB for 20 frames of
    /// 480x640 in one piece) while each chunk's sgemms stay tens of thousands of columns wide.
    static let chunkPixels = 5 * 120 * 160

    /// Runs `body`, a per-frame layer, on the frames of a [T, ·, H, W] window in chunks of consecutive frames
    /// (at most `pixels` pixels each where a frame fits, as even as possible) and gathers the results, [T, C, H, W], in
    /// order. The result equals `body(0..<T)`: no value depends on another frame's.
    static func inFrameChunks(frames t: Int, height h: Int, width w: Int, pixels: Int = chunkPixels,
                              _ body: (Range<Int>) -> Tensor) -> Tensor {
        precondition(pixels > 0, "inFrameChunks: chunks need pixels")
        let most = max(1, pixels / max(1, h * w))          // frames per chunk at most
        let chunks = (t + most - 1) / most
        guard chunks > 1 else { return body(0..<t) }
        let per = (t + chunks - 1) / chunks
        var out = Tensor(shape: [0])
        for start in stride(from: 0, to: t, by: per) {
            let frames = start..<min(t, start + per)
            let part = body(frames)
            precondition(part.rank >= 1 && part.shape[0] == frames.count,
                         "inFrameChunks: \(frames.count) frames gave \(part.shape)")
            let inner = part.count / frames.count
            if start == 0 { out = Tensor(shape: [t] + part.shape.dropFirst()) }
            precondition(Array(out.shape.dropFirst()) == Array(part.shape.dropFirst()),
                         "inFrameChunks: chunk \(part.shape) beside \(out.shape)")
            out.data.withUnsafeMutableBufferPointer { ob in
                part.data.withUnsafeBufferPointer { pb in
                    (ob.baseAddress! + start * inner).update(from: pb.baseAddress!, count: pb.count)
                }
            }
        }
        return out
    }

    /// Encodes the correlation taps and the current flow into 128 motion channels (RAFT's
    /// BasicMotionEncoder); the last two channels are the flow itself, passed through.
    struct BasicMotionEncoder {
        let convc1: Conv2d      // [256, 36, 1, 1]
        let convc2: Conv2d      // [192, 256, 3, 3]
        let convf1: Conv2d      // [128, 2, 7, 7]
        let convf2: Conv2d      // [64, 128, 3, 3]
        let conv: Conv2d        // [126, 256, 3, 3]

        init(_ w: WeightScope) {
            convc1 = Conv2d(w("convc1"), in: SequenceUpdateBlock3D.correlationChannels, out: 256, kernel: 1)
            convc2 = Conv2d(w("convc2"), in: 256, out: 192, kernel: 3)
            convf1 = Conv2d(w("convf1"), in: 2, out: 128, kernel: 7)
            convf2 = Conv2d(w("convf2"), in: 128, out: 64, kernel: 3)
            conv = Conv2d(w("conv"), in: 64 + 192, out: 128 - 2, kernel: 3)
        }

        /// `flow` [N, 2, H, W], `corr` [N, 36, H, W] -> [N, 128, H, W].
        func callAsFunction(flow: Tensor, corr: Tensor) -> Tensor {
            var taps = convc1(corr)                                  // [N, 256, H, W]
            taps.formRelu()
            let correlation = convc2.reluOf([taps])                  // [N, 192, H, W]
            taps = Tensor(shape: [0])
            var flowFeatures = convf1(flow)                          // [N, 128, H, W]
            flowFeatures.formRelu()
            let motion = convf2.reluOf([flowFeatures])               // [N, 64, H, W]
            let mixed = conv.reluOf([correlation, motion])           // [N, 126, H, W]
            return concatChannels([mixed, flow])
        }
    }

    /// A convolutional GRU whose 5-tap kernels run along one axis at a time: width, then height, then
    /// time, each pass a full GRU step on the previous pass's state.
    ///
    /// Where the time goes: the GRU is half of the network's FLOPs. Each convolution runs as five tap-shifted
    /// sgemms over the whole window (`accumulateTapConvolution`), in channels-major buffers laid out per pass;
    /// the gates are applied in two fused, parallel loops per pass.
    /// When the GRU's input starts with the context `inp` (every block but the 1/16 one, whose attention mixes
    /// the input), that third of each convolution is the same in every iteration: `context(inp:)` computes it
    /// once per scale, with the biases, and each iteration starts its sums from it.
    ///
    /// Memory: a pass's buffers (the packed [h | input] and the 384 pre-activation channels) are 3.5 times the
    /// hidden state. Long windows run each pass in chunks of at most `chunkPixels` pixels (`GRUChunk`), which
    /// bounds them; every chunk's sgemms stay tens of thousands of columns wide.
    struct SepConvGRU3D {
        let passes: [GRUPass]       // kernels (1, 1, 5), (1, 5, 1), (5, 1, 1)
        /// Whether the input's first 128 channels are the constant context (see `context(inp:)`).
        let splitsContext: Bool
        /// The most pixels of [T, H, W] one pass works on at a time.
        let chunkPixels: Int

        init(_ w: WeightScope, splitsContext: Bool = true, contextBudgetBytes: Int = 512 << 20,
             chunkPixels: Int = SequenceUpdateBlock3D.chunkPixels) {
            precondition(chunkPixels > 0, "SepConvGRU3D: chunks need pixels")
            self.splitsContext = splitsContext
            self.contextBudgetBytes = contextBudgetBytes
            self.chunkPixels = chunkPixels
            passes = [(1, TapAxis.width, (1, 1, 5)), (2, .height, (1, 5, 1)), (3, .time, (5, 1, 1))].map {
                GRUPass(w, pass: $0.0, axis: $0.1, kernel: $0.2, splitsContext: splitsContext)
            }
        }

        /// The context's share of every gate and candidate pre-activation, plus the biases, per pass and chunk:
        /// on each chunk's grid, [256 gate + 128 candidate channels, grid]. Passes beyond the memory budget have
        /// none stored and compute theirs from `inp` in every iteration.
        struct Context {
            let frames: Int, height: Int, width: Int
            let preactivations: [[[Float]]?]
            let inp: Tensor?
        }

        /// The chunks pass `pass` runs on for a [T, ·, H, W] window.
        func chunks(_ pass: GRUPass, frames t: Int, height h: Int, width w: Int) -> [GRUChunk] {
            GRUChunk.plan(axis: pass.axis, frames: t, height: h, width: w, pixels: chunkPixels)
        }

        /// Bytes of stored context pre-activations per GRU: 1,152 floats per pixel of the window, so 447 MB for
        /// 5 frames of 480x640 (all three passes stored) but 1.8 GB for 20 frames, where only the passes that fit
        /// are stored and the others recompute their share (a third of their FLOPs) to bound the peak memory.
        /// The default, 512 MiB, stores nothing for 20 frames of 480x640 (597 MB a pass): there a stored pass
        /// would stay alive through every iteration, above the chunked passes' few hundred MB of temporaries.
        let contextBudgetBytes: Int

        /// Convolves the context `inp` [T, 128, H, W] with the context third of every GRU weight, once per scale.
        func context(inp: Tensor) -> Context {
            precondition(splitsContext, "SepConvGRU3D: this GRU's input has no constant context")
            let (t, c, h, w) = inp.dims4
            precondition(c == SequenceUpdateBlock3D.hiddenChannels, "SepConvGRU3D: context \(inp.shape)")
            var stored = 0
            let preactivations = passes.map { pass -> [[Float]]? in
                let bytes = 3 * c * pass.layout(frames: t, height: h, width: w).gridStride * 4
                guard stored + bytes <= contextBudgetBytes else { return nil }
                stored += bytes
                return chunks(pass, frames: t, height: h, width: w).map { Self.preactivations(pass, inp: $0.gather(inp)) }
            }
            return Context(frames: t, height: h, width: w, preactivations: preactivations,
                           inp: preactivations.contains { $0 == nil } ? inp : nil)
        }

        /// One pass's context share plus biases, [384, grid].
        static func preactivations(_ pass: GRUPass, inp: Tensor) -> [Float] {
            let (t, c, h, w) = inp.dims4
            let layout = pass.layout(frames: t, height: h, width: w)
            var input = [Float](repeating: 0, count: c * layout.channelStride)
            var pre = pass.biasGrid(layout)
            inp.data.withUnsafeBufferPointer { xb in
            input.withUnsafeMutableBufferPointer { ib in
            pre.withUnsafeMutableBufferPointer { pb in
                layout.pack(xb.baseAddress!, channels: c, into: ib.baseAddress!, stride: layout.channelStride,
                            lead: layout.lead)
                pass.contextGates!.data.withUnsafeBufferPointer { wb in
                    accumulateTapConvolution(weights: wb.baseAddress!, outputs: 2 * c, inputs: c, layout: layout,
                                             source: ib.baseAddress!, sourceStride: layout.channelStride,
                                             destination: pb.baseAddress!, destinationStride: layout.gridStride)
                }
                pass.contextCandidate!.data.withUnsafeBufferPointer { wb in
                    accumulateTapConvolution(weights: wb.baseAddress!, outputs: c, inputs: c, layout: layout,
                                             source: ib.baseAddress!, sourceStride: layout.channelStride,
                                             destination: pb.baseAddress! + 2 * c * layout.gridStride,
                                             destinationStride: layout.gridStride)
                }
            }}}
            return pre
        }

        /// `h` [T, 128, H, W] hidden state, `x` [T, 256, H, W] input -> the new hidden state.
        func callAsFunction(h: Tensor, x: Tensor) -> Tensor {
            guard splitsContext else { return run(h: h, input: x, context: nil) }
            let parts = splitChannels(x, [SequenceUpdateBlock3D.hiddenChannels, x.shape[1] - SequenceUpdateBlock3D.hiddenChannels])
            return run(h: h, input: parts[1], context: context(inp: parts[0]))
        }

        /// `h` [T, 128, H, W]; `input` the GRU input without the context ([T, 128, H, W] motion features) when
        /// `context` is given, the whole input [T, 256, H, W] otherwise.
        func run(h: Tensor, input: Tensor, context: Context?) -> Tensor {
            let (t, hidden, height, width) = h.dims4
            let inputChannels = input.shape[1]
            precondition(hidden == SequenceUpdateBlock3D.hiddenChannels && input.shape == [t, inputChannels, height, width],
                         "SepConvGRU3D: h \(h.shape), input \(input.shape)")
            precondition((context != nil) == splitsContext && (context.map {
                $0.frames == t && $0.height == height && $0.width == width } ?? true),
                         "SepConvGRU3D: context does not fit h \(h.shape)")
            let channels = hidden + inputChannels
            // Each pass reads `state` and writes the next state into `next`; the state two passes back is dead
            // by then, so two window-sized tensors serve all three passes.
            var state = h
            var next = Tensor(shape: [t, hidden, height, width])
            for (index, pass) in passes.enumerated() {
                let chunks = self.chunks(pass, frames: t, height: height, width: width)
                for (number, chunk) in chunks.enumerated() {
                    let layout = pass.layout(frames: chunk.frames.count, height: chunk.rows.count, width: width)
                    // Pre-activations start from the context's share and the biases. A stored share is copied (it
                    // serves every iteration); one computed here is used in place, and is computed before the
                    // buffer below exists (its own packed copy of inp is gone by then).
                    var pre: [Float]
                    if let context {
                        pre = (context.preactivations[index]?[number]).map(parallelCopy)
                            ?? Self.preactivations(pass, inp: chunk.gather(context.inp!))
                    } else {
                        pre = pass.biasGrid(layout)
                    }
                    // The pass's buffer holds [h | input] of this chunk in the pass's layout (zero gaps).
                    var buffer = parallelZeros(channels * layout.channelStride)
                    let (stateChunk, inputChunk) = (chunk.gather(state), chunk.gather(input))
                    stateChunk.data.withUnsafeBufferPointer { hb in
                    inputChunk.data.withUnsafeBufferPointer { xb in
                    buffer.withUnsafeMutableBufferPointer { bb in
                        layout.pack(hb.baseAddress!, channels: hidden, into: bb.baseAddress!, stride: layout.channelStride,
                                    lead: layout.lead)
                        layout.pack(xb.baseAddress!, channels: inputChannels, into: bb.baseAddress!, channelOffset: hidden,
                                    stride: layout.channelStride, lead: layout.lead)
                    }}}
                    if chunk.rows.count == height {
                        // Whole frames are contiguous in frames-major video: the step writes them in place.
                        next.data.withUnsafeMutableBufferPointer { nb in
                            pass.step(buffer: &buffer, channels: channels, layout: layout, preactivations: &pre,
                                      into: nb.baseAddress! + chunk.frames.lowerBound * hidden * height * width)
                        }
                    } else {
                        var part = Tensor(shape: [chunk.frames.count, hidden, chunk.rows.count, width])
                        part.data.withUnsafeMutableBufferPointer { pb in
                            pass.step(buffer: &buffer, channels: channels, layout: layout, preactivations: &pre,
                                      into: pb.baseAddress!)
                        }
                        chunk.scatter(part, into: &next)
                    }
                }
                if index == passes.count - 1 { break }
                let previous = state
                state = next
                next = index == 0 ? Tensor(shape: [t, hidden, height, width]) : previous
            }
            return next
        }
    }

    /// A block of a [T, C, H, W] window that one GRU pass runs on at a time: some frames, some rows, every
    /// column. A pass along width or height needs whole frames, one along time every frame of its rows.
    struct GRUChunk: Equatable {
        let frames: Range<Int>, rows: Range<Int>
        /// The window's size, which `gather` and `scatter` check.
        let window: (frames: Int, height: Int, width: Int)

        static func == (a: GRUChunk, b: GRUChunk) -> Bool {
            a.frames == b.frames && a.rows == b.rows && a.window == b.window
        }

        /// Chunks of at most `pixels` pixels where the axis allows it (one frame or one row at least), as even
        /// as possible, in order. A window that fits is one chunk.
        static func plan(axis: TapAxis, frames t: Int, height h: Int, width w: Int, pixels: Int) -> [GRUChunk] {
            // Frames (or rows along time) per chunk at most, then as many chunks as that needs, evened out.
            let (extent, byFrames, unit) = axis == .time ? (h, false, t * w) : (t, true, h * w)
            let most = max(1, pixels / max(1, unit))
            let count = (extent + most - 1) / most
            let per = (extent + count - 1) / count
            return stride(from: 0, to: extent, by: per).map { start in
                let range = start..<min(extent, start + per)
                return GRUChunk(frames: byFrames ? range : 0..<t, rows: byFrames ? 0..<h : range, window: (t, h, w))
            }
        }

        var isWholeWindow: Bool { frames.count == window.frames && rows.count == window.height }

        /// This chunk of `video` [T, C, H, W]: [frames, C, rows, W] (the video itself when it is the whole window).
        func gather(_ video: Tensor) -> Tensor {
            let (t, c, h, w) = video.dims4
            precondition(t == window.frames && h == window.height && w == window.width,
                         "GRUChunk: video \(video.shape) is not the window \(window)")
            if isWholeWindow { return video }
            if rows.count == h { return video.slice(frames) }
            return Tensor(shape: [frames.count, c, rows.count, w]) { out in
                video.data.withUnsafeBufferPointer { vb in
                    for (i, frame) in frames.enumerated() {
                        for channel in 0..<c {
                            // Rows `rows` of one plane are contiguous: one copy per plane.
                            (out.baseAddress! + (i * c + channel) * rows.count * w)
                                .update(from: vb.baseAddress! + ((frame * c + channel) * h + rows.lowerBound) * w,
                                        count: rows.count * w)
                        }
                    }
                }
            }
        }

        /// Writes `part` [frames, C, rows, W] into this chunk of `video` [T, C, H, W].
        func scatter(_ part: Tensor, into video: inout Tensor) {
            let (t, c, h, w) = video.dims4
            precondition(t == window.frames && h == window.height && w == window.width
                         && part.shape == [frames.count, c, rows.count, w],
                         "GRUChunk: part \(part.shape) does not fit \(video.shape) at \(frames), \(rows)")
            video.data.withUnsafeMutableBufferPointer { vb in
                part.data.withUnsafeBufferPointer { pb in
                    for (i, frame) in frames.enumerated() {
                        for channel in 0..<c {
                            (vb.baseAddress! + ((frame * c + channel) * h + rows.lowerBound) * w)
                                .update(from: pb.baseAddress! + (i * c + channel) * rows.count * w, count: rows.count * w)
                        }
                    }
                }
            }
        }
    }

    /// One GRU step with 5-tap kernels along one axis, weights `convz<pass>`, `convr<pass>`, `convq<pass>`:
    ///
    ///     hx = cat[h, x]
    ///     z  = σ(convz(hx)),  r = σ(convr(hx))
    ///     q  = tanh(convq(cat[r ⊙ h, x]))
    ///     h' = (1 - z) ⊙ h + z ⊙ q
    struct GRUPass {
        let axis: TapAxis
        /// convz and convr stacked (z's output channels first), tap-major, over the input channels that change
        /// between iterations ([h | motion] when the context is split off, all of [h | x] otherwise):
        /// [5, 2·128, 256 or 384].
        let gates: Tensor
        let candidate: Tensor       // convq, [5, 128, 256 or 384]
        /// The context's input channels 128..<256 of convz|convr and convq: [5, 256, 128], [5, 128, 128].
        let contextGates: Tensor?, contextCandidate: Tensor?
        let bias: [Float]           // [z 128 | r 128 | q 128]

        init(_ w: WeightScope, pass: Int, axis: TapAxis, kernel: (t: Int, h: Int, w: Int), splitsContext: Bool) {
            let hidden = SequenceUpdateBlock3D.hiddenChannels
            let inChannels = hidden + 2 * hidden
            // Bound as layers, run only through the rearranged weights below.
            let z = Conv3d(w("convz\(pass)"), in: inChannels, out: hidden, kernel: kernel)      // [128, 384, kt, kh, kw]
            let r = Conv3d(w("convr\(pass)"), in: inChannels, out: hidden, kernel: kernel)
            let q = Conv3d(w("convq\(pass)"), in: inChannels, out: hidden, kernel: kernel)
            let stacked = Tensor.stack([z.weight, r.weight])              // [256, 384, kt, kh, kw]
            let varying = splitsContext ? Array(0..<hidden) + Array((2 * hidden)..<inChannels) : Array(0..<inChannels)
            self.axis = axis
            gates = tapMajorWeights(stacked, inputChannels: varying)
            candidate = tapMajorWeights(q.weight, inputChannels: varying)
            let context = Array(hidden..<(2 * hidden))
            contextGates = splitsContext ? tapMajorWeights(stacked, inputChannels: context) : nil
            contextCandidate = splitsContext ? tapMajorWeights(q.weight, inputChannels: context) : nil
            bias = z.bias.data + r.bias.data + q.bias.data
        }

        func layout(frames: Int, height: Int, width: Int) -> TapLayout {
            TapLayout(frames: frames, height: height, width: width, axis: axis, radius: 2)
        }

        /// The biases spread over this pass's grid: [z | r | q, grid].
        func biasGrid(_ layout: TapLayout) -> [Float] {
            let stride = layout.gridStride
            return [Float](unsafeUninitializedCapacity: bias.count * stride) { buffer, count in
                for (c, value) in bias.enumerated() {
                    (buffer.baseAddress! + c * stride).initialize(repeating: value, count: stride)
                }
                count = bias.count * stride
            }
        }

        /// One GRU step on `buffer` ([h | input] channels in `layout`; its h channels are overwritten), adding the
        /// convolutions to `pre` ([z | r | q, grid], holding the biases and any context share) and writing the new
        /// state into `video` [T, 128, H, W].
        func step(buffer: inout [Float], channels: Int, layout: TapLayout, preactivations pre: inout [Float],
                  into video: UnsafeMutablePointer<Float>) {
            let hidden = SequenceUpdateBlock3D.hiddenChannels
            let grid = layout.gridStride
            precondition(pre.count == 3 * hidden * grid, "GRUPass: pre-activations do not fit \(layout)")
            let (frames, height, width) = (layout.frames, layout.height, layout.width)
            buffer.withUnsafeMutableBufferPointer { bb in
            pre.withUnsafeMutableBufferPointer { pb in
                let (x, p) = (bb.baseAddress!, pb.baseAddress!)
                gates.data.withUnsafeBufferPointer { wb in
                    accumulateTapConvolution(weights: wb.baseAddress!, outputs: 2 * hidden, inputs: channels, layout: layout,
                                             source: x, sourceStride: layout.channelStride,
                                             destination: p, destinationStride: grid)
                }
                // z = σ(z), and r ⊙ h replaces h in the buffer (the candidate's input cat[r ⊙ h, x]); h itself
                // moves into r's place, which nothing reads any more. Data positions only: gaps stay zero.
                parallelFor(hidden * frames, minimumPerThread: 4) { items in
                    for item in items {
                        let (c, t) = (item / frames, item % frames)
                        for y in 0..<height {
                            let at = layout.rowOffset(frame: t, row: y)
                            let z = p + c * grid + at, r = p + (hidden + c) * grid + at
                            let state = x + c * layout.channelStride + layout.lead + at
                            // i < width: one row of this channel, inside the grid and the buffer.
                            for i in 0..<width {
                                let gate = fastSigmoid(r[i])
                                z[i] = fastSigmoid(z[i])
                                r[i] = state[i]
                                state[i] = gate * state[i]
                            }
                        }
                    }
                }
                candidate.data.withUnsafeBufferPointer { wb in
                    accumulateTapConvolution(weights: wb.baseAddress!, outputs: hidden, inputs: channels, layout: layout,
                                             source: x, sourceStride: layout.channelStride,
                                             destination: p + 2 * hidden * grid, destinationStride: grid)
                }
                // h' = (1 - z) ⊙ h + z ⊙ tanh(q).
                parallelFor(hidden * frames, minimumPerThread: 4) { items in
                    for item in items {
                        let (c, t) = (item / frames, item % frames)
                        for y in 0..<height {
                            let at = layout.rowOffset(frame: t, row: y)
                            let z = p + c * grid + at, state = p + (hidden + c) * grid + at
                            let q = p + (2 * hidden + c) * grid + at
                            let out = video + ((t * hidden + c) * height + y) * width
                            // i < width: one row, as above.
                            for i in 0..<width {
                                out[i] = (1 - z[i]) * state[i] + z[i] * fastTanh(q[i])
                            }
                        }
                    }
                }
            }}
        }
    }

    /// Predicts the flow update from the hidden state with two 3×3×3 convolutions over (t, y, x).
    struct FlowHead3D {
        /// Tap-shifted sgemms over the whole window.
        let conv1: Conv3d       // [256, 128, 3, 3, 3]
        /// 2 outputs: tap products beat a 6,912-row column matrix (see conv3dByTapProducts).
        let conv2: Conv3d       // [2, 256, 3, 3, 3]

        init(_ w: WeightScope) {
            conv1 = Conv3d(w("conv1"), in: SequenceUpdateBlock3D.hiddenChannels, out: 256, kernel: (3, 3, 3), method: .box)
            conv2 = Conv3d(w("conv2"), in: 256, out: 2, kernel: (3, 3, 3), method: .tapProducts)
        }

        /// [T, 128, H, W] -> [T, 2, H, W].
        func callAsFunction(_ net: Tensor) -> Tensor {
            conv2(conv1(net, relu: true))
        }
    }

    /// The convex-upsampling mask head, `mask.0` (3×3) and `mask.2` (1×1) of an nn.Sequential with a
    /// ReLU between them; the caller applies the 0.25 scale.
    struct MaskHead {
        let expand: Conv2d      // mask.0 [256, 128, 3, 3]
        let project: Conv2d     // mask.2 [144, 256, 1, 1]

        init(_ w: WeightScope) {
            let hidden = SequenceUpdateBlock3D.hiddenChannels
            expand = Conv2d(w("0"), in: hidden, out: hidden + 128, kernel: 3)
            project = Conv2d(w("2"), in: hidden + 128, out: SequenceUpdateBlock3D.maskChannels, kernel: 1)
        }

        /// [T, 128, H, W] -> [T, 144, H, W].
        func callAsFunction(_ net: Tensor) -> Tensor {
            project(expand.reluOf([net]))
        }
    }
}
