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
        gru = SepConvGRU3D(w("gru"))
        flowHead = FlowHead3D(w("flow_head"))
        mask = MaskHead(w("mask"))
        attention = withAttention ? (TimeAttnBlock(w("time_attn")), SpaceAttnBlock(w("space_attn"))) : nil
    }

    /// One update: `net` [T, 128, H, W] hidden state, `inp` [T, 128, H, W] context features,
    /// `corr` [T, 36, H, W] correlation taps, `flow` [T, 2, H, W] current flow.
    /// Returns the new hidden state, the upsampling mask [T, 144, H, W] (already scaled by 0.25, as the
    /// reference scales it "to balance gradients") and the flow update `delta` [T, 2, H, W].
    func callAsFunction(net: Tensor, inp: Tensor, corr: Tensor, flow: Tensor, frames: Int)
        -> (net: Tensor, mask: Tensor, delta: Tensor) {
        let (t, hc, h, w) = net.dims4
        let hidden = Self.hiddenChannels
        precondition(hc == hidden && t == frames,
                     "SequenceUpdateBlock3D: net \(net.shape) is not [\(frames), \(hidden), H, W]")
        precondition(inp.shape == [t, hidden, h, w], "SequenceUpdateBlock3D: inp \(inp.shape), net \(net.shape)")
        precondition(corr.shape == [t, Self.correlationChannels, h, w],
                     "SequenceUpdateBlock3D: corr \(corr.shape), net \(net.shape)")
        precondition(flow.shape == [t, 2, h, w], "SequenceUpdateBlock3D: flow \(flow.shape), net \(net.shape)")

        let motion = encoder(flow: flow, corr: corr)                 // [T, 128, H, W]
        var features = concatChannels([inp, motion])                 // [T, 256, H, W]
        if let attention {
            features = attention.time(features, frames: frames)
            features = attention.space(features)
        }
        let newNet = gru(h: net, x: features)                        // [T, 128, H, W]
        let delta = flowHead(newNet)                                 // [T, 2, H, W]
        let upsamplingMask = mask(newNet) * 0.25                     // [T, 144, H, W]
        return (newNet, upsamplingMask, delta)
    }
}

extension SequenceUpdateBlock3D {
    /// A 2-D convolution with bias and "same" padding, bound to `<scope>.weight` [Cout, Cin, k, k]
    /// and `<scope>.bias` [Cout].
    ///
    /// Nested so that its name cannot collide with the encoder's layers in the same module.
    struct Conv2D {
        let weight: Tensor      // [Cout, Cin, k, k]
        let bias: Tensor        // [Cout]
        let padding: Int

        init(_ w: WeightScope, in cin: Int, out cout: Int, kernel: Int) {
            weight = w.tensor("weight", [cout, cin, kernel, kernel])
            bias = w.tensor("bias", [cout])
            padding = kernel / 2
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            conv2d(x, weight: weight, bias: bias, padding: (padding, padding))
        }
    }

    /// A 3-D convolution with bias and "same" padding on frames-major video, bound to
    /// `<scope>.weight` [Cout, Cin, kt, kh, kw] and `<scope>.bias` [Cout].
    struct Conv3D {
        let weight: Tensor      // [Cout, Cin, kt, kh, kw]
        let bias: Tensor        // [Cout]
        let padding: (Int, Int, Int)

        init(_ w: WeightScope, in cin: Int, out cout: Int, kernel: (t: Int, h: Int, w: Int)) {
            weight = w.tensor("weight", [cout, cin, kernel.t, kernel.h, kernel.w])
            bias = w.tensor("bias", [cout])
            padding = (kernel.t / 2, kernel.h / 2, kernel.w / 2)
        }

        /// Convolutions over the same input stacked along the output channels, so one im2col and one
        /// sgemm serve them all; the outputs come out in the order given.
        init(stacking parts: [Conv3D]) {
            precondition(!parts.isEmpty && parts.allSatisfy {
                Array($0.weight.shape.dropFirst()) == Array(parts[0].weight.shape.dropFirst())
            }, "Conv3D: cannot stack convolutions of shapes \(parts.map(\.weight.shape))")
            // Cout is the outermost axis of both tensors, so stacking is concatenation of the storage.
            weight = Tensor.stack(parts.map(\.weight))
            bias = Tensor.stack(parts.map(\.bias))
            padding = parts[0].padding
        }

        func callAsFunction(_ x: Tensor) -> Tensor {
            conv3d(x, weight: weight, bias: bias, padding: padding)
        }
    }

    /// Encodes the correlation taps and the current flow into 128 motion channels (RAFT's
    /// BasicMotionEncoder); the last two channels are the flow itself, passed through.
    struct BasicMotionEncoder {
        let convc1: Conv2D      // [256, 36, 1, 1]
        let convc2: Conv2D      // [192, 256, 3, 3]
        let convf1: Conv2D      // [128, 2, 7, 7]
        let convf2: Conv2D      // [64, 128, 3, 3]
        let conv: Conv2D        // [126, 256, 3, 3]

        init(_ w: WeightScope) {
            convc1 = Conv2D(w("convc1"), in: SequenceUpdateBlock3D.correlationChannels, out: 256, kernel: 1)
            convc2 = Conv2D(w("convc2"), in: 256, out: 192, kernel: 3)
            convf1 = Conv2D(w("convf1"), in: 2, out: 128, kernel: 7)
            convf2 = Conv2D(w("convf2"), in: 128, out: 64, kernel: 3)
            conv = Conv2D(w("conv"), in: 64 + 192, out: 128 - 2, kernel: 3)
        }

        /// `flow` [N, 2, H, W], `corr` [N, 36, H, W] -> [N, 128, H, W].
        func callAsFunction(flow: Tensor, corr: Tensor) -> Tensor {
            let correlation = convc2(convc1(corr).relu()).relu()     // [N, 192, H, W]
            let motion = convf2(convf1(flow).relu()).relu()          // [N, 64, H, W]
            let mixed = conv(concatChannels([correlation, motion])).relu()  // [N, 126, H, W]
            return concatChannels([mixed, flow])
        }
    }

    /// A convolutional GRU whose 5-tap kernels run along one axis at a time: width, then height, then
    /// time, each pass a full GRU step on the previous pass's state.
    struct SepConvGRU3D {
        let horizontal: GRUPass     // kernels (1, 1, 5)
        let vertical: GRUPass       // kernels (1, 5, 1)
        let temporal: GRUPass       // kernels (5, 1, 1)

        init(_ w: WeightScope) {
            horizontal = GRUPass(w, pass: 1, kernel: (1, 1, 5))
            vertical = GRUPass(w, pass: 2, kernel: (1, 5, 1))
            temporal = GRUPass(w, pass: 3, kernel: (5, 1, 1))
        }

        /// `h` [T, 128, H, W] hidden state, `x` [T, 256, H, W] input -> the new hidden state.
        func callAsFunction(h: Tensor, x: Tensor) -> Tensor {
            temporal(h: vertical(h: horizontal(h: h, x: x), x: x), x: x)
        }
    }

    /// One GRU step with 3-D kernels of one shape, weights `convz<pass>`, `convr<pass>`, `convq<pass>`:
    ///
    ///     hx = cat[h, x]
    ///     z  = σ(convz(hx)),  r = σ(convr(hx))
    ///     q  = tanh(convq(cat[r ⊙ h, x]))
    ///     h' = (1 - z) ⊙ h + z ⊙ q
    struct GRUPass {
        /// convz and convr stacked at load time, since both read hx: [2·128, 384, kt, kh, kw],
        /// z's output channels first.
        let gates: Conv3D
        let candidate: Conv3D       // convq [128, 384, kt, kh, kw]

        init(_ w: WeightScope, pass: Int, kernel: (t: Int, h: Int, w: Int)) {
            let hidden = SequenceUpdateBlock3D.hiddenChannels
            let inChannels = hidden + 2 * hidden
            let z = Conv3D(w("convz\(pass)"), in: inChannels, out: hidden, kernel: kernel)
            let r = Conv3D(w("convr\(pass)"), in: inChannels, out: hidden, kernel: kernel)
            gates = Conv3D(stacking: [z, r])
            candidate = Conv3D(w("convq\(pass)"), in: inChannels, out: hidden, kernel: kernel)
        }

        func callAsFunction(h: Tensor, x: Tensor) -> Tensor {
            let (t, hidden, height, width) = h.dims4
            let plane = height * width
            // hx = cat[h, x]; once the gates have read it, its h channels are overwritten with r ⊙ h,
            // which turns it into the candidate's input cat[r ⊙ h, x] without another copy of x.
            var hx = concatChannels([h, x])                          // [T, 384, H, W]
            let inChannels = hx.shape[1]
            var gateValues = gates(hx)                               // [T, 256, H, W]: z then r, pre-σ
            gateValues.data.withUnsafeMutableBufferPointer { gb in
            hx.data.withUnsafeMutableBufferPointer { hxb in
                parallelFor(t * hidden, minimumPerThread: 8) { planes in
                    for p in planes {
                        let (frame, channel) = (p / hidden, p % hidden)
                        // Planes of this frame and channel: z and r among the frame's 2·hidden gate
                        // planes, the state among hx's first `hidden` planes of the frame.
                        let z = gb.baseAddress! + (frame * 2 * hidden + channel) * plane
                        let r = z + hidden * plane
                        let state = hxb.baseAddress! + (frame * inChannels + channel) * plane
                        for i in 0..<plane {
                            z[i] = GRUPass.sigmoid(z[i])
                            state[i] = GRUPass.sigmoid(r[i]) * state[i]
                        }
                    }
                }
            }}
            let q = candidate(hx)                                    // [T, 128, H, W], before tanh
            return Tensor(shape: [t, hidden, height, width]) { out in
                h.data.withUnsafeBufferPointer { hb in
                q.data.withUnsafeBufferPointer { qb in
                gateValues.data.withUnsafeBufferPointer { gb in
                    parallelFor(t * hidden, minimumPerThread: 8) { planes in
                        for p in planes {
                            let (frame, channel) = (p / hidden, p % hidden)
                            let z = gb.baseAddress! + (frame * 2 * hidden + channel) * plane
                            let base = p * plane
                            for i in 0..<plane {
                                let candidateValue = tanhf(qb[base + i])
                                out[base + i] = (1 - z[i]) * hb[base + i] + z[i] * candidateValue
                            }
                        }
                    }
                }}}
            }
        }

        /// The logistic function as torch.sigmoid computes it in float: 1 / (1 + e^(-x)).
        @inline(__always)
        static func sigmoid(_ x: Float) -> Float {
            1 / (1 + expf(-x))
        }
    }

    /// Predicts the flow update from the hidden state with two 3×3×3 convolutions over (t, y, x).
    struct FlowHead3D {
        let conv1: Conv3D       // [256, 128, 3, 3, 3]
        let conv2: Conv3D       // [2, 256, 3, 3, 3]

        init(_ w: WeightScope) {
            conv1 = Conv3D(w("conv1"), in: SequenceUpdateBlock3D.hiddenChannels, out: 256, kernel: (3, 3, 3))
            conv2 = Conv3D(w("conv2"), in: 256, out: 2, kernel: (3, 3, 3))
        }

        /// [T, 128, H, W] -> [T, 2, H, W].
        func callAsFunction(_ net: Tensor) -> Tensor {
            conv2(conv1(net).relu())
        }
    }

    /// The convex-upsampling mask head, `mask.0` (3×3) and `mask.2` (1×1) of an nn.Sequential with a
    /// ReLU between them; the caller applies the 0.25 scale.
    struct MaskHead {
        let expand: Conv2D      // mask.0 [256, 128, 3, 3]
        let project: Conv2D     // mask.2 [144, 256, 1, 1]

        init(_ w: WeightScope) {
            let hidden = SequenceUpdateBlock3D.hiddenChannels
            expand = Conv2D(w("0"), in: hidden, out: hidden + 128, kernel: 3)
            project = Conv2D(w("2"), in: hidden + 128, out: SequenceUpdateBlock3D.maskChannels, kernel: 1)
        }

        /// [T, 128, H, W] -> [T, 144, H, W].
        func callAsFunction(_ net: Tensor) -> Tensor {
            project(expand(net).relu())
        }
    }
}
