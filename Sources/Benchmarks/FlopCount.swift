// The network's FLOPs as torch.utils.flop_counter.FlopCounterMode counts them, from the layer shapes.
//
// FlopCounterMode counts 2 FLOPs per multiply-add of convolutions (conv2d, conv3d) and matrix products
// (mm, addmm, bmm and the einsums that become bmm) only; grid_sample, element-wise ops, norms, softmax,
// pooling, interpolation and unfold count zero. This is the count of the reference's work, not of ours:
// where we skip work (the GRU's constant input half is convolved once per scale; the mask head, counted in
// every iteration as the reference runs it, runs only in each scale's last one) the count stays the same,
// so GFLOP/s figures compare the two implementations on one scale. Checked against torch: 1.10 TFLOP for
// 5 frames of 128x256 at 10 iterations, 19.8 TFLOP for 5 frames of 480x640 at 20.
import DynamicStereo

/// FLOPs of one forward pass per stage, on torch's count.
public struct FlopCount: Sendable {
    /// The reference's feature channels at 1/4 and 1/16 (`fnet`'s output, the attention's width) and its heads.
    static let featureChannels = 256, attentionHeads = 8

    public private(set) var byStage = [Double](repeating: 0, count: NetworkStage.allCases.count)

    public subscript(stage: NetworkStage) -> Double { byStage[stage.rawValue] }
    public var total: Double { byStage.reduce(0, +) }

    /// The count for a window of `frames` frames of `height` x `width` (multiples of 32) at `iters` iterations.
    public init(frames t: Int, height: Int, width: Int, iters: Int) {
        let (h4, w4) = (height / 4, width / 4)
        let channels = Self.featureChannels
        add(.encoder, 2 * Double(t) * Self.encoder(height: height, width: width))

        let tokens = (height / 16) * (width / 16)
        // 4 rounds: self and cross attention (two LoFTR layer calls each) and temporal attention on both views.
        add(.attention, 4 * (4 * Self.loftrLayer(queries: tokens, sources: tokens, images: t)
                             + 2 * Self.timeAttention(tokens: tokens, frames: t)))

        for scale in [16, 8, 4] {
            let (h, w) = (height / scale, width / scale)
            // einsum("aijk,aijh->ajkh"): one [W1, C] x [C, W2] product per image row.
            add(.correlationBuild, 2 * Double(t * h * w * w * channels))
        }
        let pixels16 = Double(t * tokens), pixels8 = Double(t * (h4 / 2) * (w4 / 2)), pixels4 = Double(t * h4 * w4)
        let attention16 = Self.timeAttention(tokens: tokens, frames: t) + Self.loftrLayer(queries: tokens, sources: tokens, images: t)
        add(.update16, Double(iters / 2) * (pixels16 * Self.updateBlockPerPixel + attention16))
        add(.update08, Double(iters / 2) * pixels8 * Self.updateBlockPerPixel)
        add(.update04, Double(iters) * pixels4 * Self.updateBlockPerPixel)
    }

    private mutating func add(_ stage: NetworkStage, _ flops: Double) {
        byStage[stage.rawValue] += flops
    }

    /// FLOPs of a convolution from `cin` to `cout` channels with `taps` kernel taps at `pixels` output pixels.
    static func convolution(_ cin: Int, _ cout: Int, taps: Int, pixels: Int) -> Double {
        2 * Double(cin * cout * taps) * Double(pixels)
    }

    /// BasicEncoder on one image of `height` x `width`.
    static func encoder(height: Int, width: Int) -> Double {
        let half = (height / 2) * (width / 2), quarter = (height / 4) * (width / 4)
        func block(_ cin: Int, _ cout: Int, pixels: Int) -> Double {
            convolution(cin, cout, taps: 9, pixels: pixels) + convolution(cout, cout, taps: 9, pixels: pixels)
                + convolution(cin, cout, taps: 1, pixels: pixels)
        }
        return convolution(3, 64, taps: 49, pixels: half)
            + block(64, 64, pixels: half) + block(64, 64, pixels: half)
            + block(64, 96, pixels: quarter) + block(96, 96, pixels: quarter)
            + block(96, 128, pixels: quarter) + block(128, 128, pixels: quarter)
            + convolution(128, 256, taps: 1, pixels: quarter)
    }

    /// One LoFTR layer call (projections, linear attention's einsums, merge, MLP) over `images` images.
    static func loftrLayer(queries l: Int, sources s: Int, images n: Int) -> Double {
        let c = Double(featureChannels), d = c / Double(attentionHeads)
        let (l, s) = (Double(l), Double(s))
        let projections = 2 * c * c * (l + 2 * s)
        // KV = Σ φ(k) vᵀ per head; Z's einsum with the key sum; the queried values φ(q)ᵀ KV.
        let attention = 2 * s * c * d + 2 * l * c + 2 * l * c * d
        let merge = 2 * l * c * c, mlp = 2 * l * (2 * c) * (2 * c) + 2 * l * (2 * c) * c
        return Double(n) * (projections + attention + merge + mlp)
    }

    /// One TimeAttnBlock on `tokens` pixels of `frames` frames: QKᵀ and AV per pixel, the projection and the fc.
    static func timeAttention(tokens: Int, frames t: Int) -> Double {
        let c = Double(featureChannels), rows = Double(tokens * t)
        return 2 * 2 * Double(tokens) * Double(t * t) * c + 2 * 2 * rows * c * c
    }

    /// SequenceUpdateBlock3D's convolutions per pixel of [T, H, W]: motion encoder, GRU, flow head, mask head.
    static let updateBlockPerPixel: Double = {
        let motion = convolution(36, 256, taps: 1, pixels: 1) + convolution(256, 192, taps: 9, pixels: 1)
            + convolution(2, 128, taps: 49, pixels: 1) + convolution(128, 64, taps: 9, pixels: 1)
            + convolution(256, 126, taps: 9, pixels: 1)
        let gru = 3 * (convolution(384, 256, taps: 5, pixels: 1) + convolution(384, 128, taps: 5, pixels: 1))
        let flowHead = convolution(128, 256, taps: 27, pixels: 1) + convolution(256, 2, taps: 27, pixels: 1)
        let mask = convolution(128, 256, taps: 9, pixels: 1) + convolution(256, 144, taps: 1, pixels: 1)
        return motion + gru + flowHead + mask
    }()
}
