// DynamicStereo models/core/extractor.py: ResidualBlock and BasicEncoder, with instance normalisation
//
// Dimension letters: N images (left and right frames together), C channels, H x W the input size.
// Every normalisation is InstanceNorm2d(affine: false), so the checkpoint holds no norm weights.
import TensorKernels

/// Two 3x3 convolutions with a 1x1 projection of the input beside them: relu(norm(proj(x)) + y).
///
/// The projection (`downsample`) exists at every stride, also where the channel count stays the same.
struct ResidualBlock {
    private let conv1: Conv2d       // [planes, inPlanes, 3, 3], stride s, padding 1
    private let conv2: Conv2d       // [planes, planes, 3, 3], padding 1
    private let downsample: Conv2d  // [planes, inPlanes, 1, 1], stride s
    let inputChannels: Int

    init(_ w: WeightScope, input: Int, output: Int, stride: Int) {
        inputChannels = input
        conv1 = Conv2d(w("conv1"), in: input, out: output, kernel: 3, stride: stride)
        conv2 = Conv2d(w("conv2"), in: output, out: output, kernel: 3)
        downsample = Conv2d(w("downsample")(0), in: input, out: output, kernel: 1, stride: stride)
    }

    /// [N, Cin, H, W] to [N, Cout, H / s, W / s] (rounded up).
    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inputChannels,
                     "ResidualBlock: input \(x.shape) for \(inputChannels) channels")
        // Each normalisation runs in place, fused with the ReLU and the residual sum after it.
        var y = conv1(x)
        formInstanceNorm(&y, relu: true)
        y = conv2(y)
        formInstanceNorm(&y, relu: true)
        var out = downsample(x)
        formInstanceNorm(&out, adding: y, relu: true)
        return out
    }
}

/// The feature encoder `fnet`: images at full resolution to 256-channel features at a quarter of it.
///
/// conv 7x7 / 2 -> norm -> relu, three stages of two residual blocks (64, 96 / 2, 128 channels), conv 1x1 to 256.
struct BasicEncoder {
    static let outputChannels = 256
    private let conv1: Conv2d   // [64, 3, 7, 7], stride 2, padding 3
    private let layers: [ResidualBlock]
    private let conv2: Conv2d   // [256, 128, 1, 1]

    /// `w` is the encoder's scope, `root("fnet")`.
    init(_ w: WeightScope) {
        conv1 = Conv2d(w("conv1"), in: 3, out: 64, kernel: 7, stride: 2)
        var blocks: [ResidualBlock] = []
        var channels = 64
        for (stage, (output, stride)) in [(64, 1), (96, 2), (128, 1)].enumerated() {
            let scope = w("layer\(stage + 1)")
            blocks.append(ResidualBlock(scope(0), input: channels, output: output, stride: stride))
            blocks.append(ResidualBlock(scope(1), input: output, output: output, stride: 1))
            channels = output
        }
        layers = blocks
        conv2 = Conv2d(w("conv2"), in: channels, out: Self.outputChannels, kernel: 1)
    }

    /// `x` [N, 3, H, W] in [-1, 1] to [N, 256, ⌈H/4⌉, ⌈W/4⌉]. Normalisation is per image, so batching the
    /// left and right frames together changes only the speed.
    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == 3 && x.shape[2] > 0 && x.shape[3] > 0,
                     "BasicEncoder: expected [N, 3, H, W] images, got \(x.shape)")
        var features = conv1(x)
        formInstanceNorm(&features, relu: true)
        for block in layers { features = block(features) }
        return conv2(features)
    }
}
