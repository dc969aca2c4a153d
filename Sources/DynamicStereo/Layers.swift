// The layers the network is built from (PyTorch's nn.Conv2d, nn.Conv3d, nn.Linear, nn.LayerNorm), each bound to
// its checkpoint tensors by name, as candle-nn's `conv2d(cin, cout, k, cfg, vb.pp("conv1"))` binds them: a layer
// takes the scope of its PyTorch module and reads `<scope>.weight` and `<scope>.bias` from it.
//
// Dimension letters: N images (or frames of a window), T frames of frames-major video [T, C, H, W], C channels,
// H x W pixels, L tokens of a sequence; k the kernel size.
import TensorKernels

/// nn.Conv2d with a square kernel and the same stride and padding on both axes, on [N, Cin, H, W].
struct Conv2d {
    let weight: Tensor      // [Cout, Cin, k, k]
    let bias: Tensor        // [Cout]
    let stride: Int, padding: Int
    /// Stride-1 3x3 kernels with padding 1, rearranged once for tap-shifted sgemms (`boxConvolution`), which
    /// need no column matrix; every other shape runs as im2col + sgemm (`conv2d`).
    private let box: BoxKernel?

    /// Binds `<w>.weight` and `<w>.bias`. The padding defaults to k/2: "same" at stride 1, as every
    /// convolution of the network pads.
    init(_ w: WeightScope, in cin: Int, out cout: Int, kernel: Int, stride: Int = 1, padding: Int? = nil) {
        weight = w.tensor("weight", [cout, cin, kernel, kernel])
        bias = w.tensor("bias", [cout])
        self.stride = stride
        self.padding = padding ?? kernel / 2
        box = kernel == 3 && stride == 1 && self.padding == 1 ? BoxKernel(weight: weight, bias: bias) : nil
    }

    var inputs: Int { weight.shape[1] }

    /// [N, Cin, H, W] to [N, Cout, H', W'].
    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inputs, "Conv2d: input \(x.shape) for weight \(weight.shape)")
        if let box { return boxConvolution([x], box) }
        return conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding))
    }

    /// relu(conv(cat(inputs))) over the channels of `inputs` (each [N, Ci, H, W]), without building the
    /// concatenation where the kernel allows it.
    func reluOf(_ inputs: [Tensor]) -> Tensor {
        let channels = inputs.reduce(0) { total, part in
            precondition(part.rank == 4, "Conv2d: input \(part.shape) is not [N, C, H, W]")
            return total + part.shape[1]
        }
        precondition(channels == self.inputs, "Conv2d: inputs of \(channels) channels for weight \(weight.shape)")
        if let box { return boxConvolution(inputs, box, relu: true) }
        var out = self(inputs.count == 1 ? inputs[0] : concatChannels(inputs))
        out.formRelu()
        return out
    }
}

/// nn.Conv3d with stride 1 and "same" padding (k/2 on every axis), on frames-major video [T, Cin, H, W].
struct Conv3d {
    /// How the convolution is computed; each layer picks what its shape runs fastest with.
    enum Method {
        /// im2col + sgemm (`conv3d`): any shape.
        case columns
        /// Tap-shifted sgemms over the whole window (`boxConvolution`), with the kernel rearranged once:
        /// odd kernels with many outputs.
        case box
        /// One sgemm per frame for every tap's contribution, summed shifted (`conv3dByTapProducts`): layers
        /// with few outputs, where a column matrix would be read for each of a handful of output rows.
        case tapProducts
    }

    let weight: Tensor      // [Cout, Cin, kt, kh, kw]
    let bias: Tensor        // [Cout]
    let padding: (t: Int, h: Int, w: Int)
    let method: Method
    private let box: BoxKernel?

    /// Binds `<w>.weight` and `<w>.bias`.
    init(_ w: WeightScope, in cin: Int, out cout: Int, kernel: (t: Int, h: Int, w: Int), method: Method = .columns) {
        weight = w.tensor("weight", [cout, cin, kernel.t, kernel.h, kernel.w])
        bias = w.tensor("bias", [cout])
        padding = (kernel.t / 2, kernel.h / 2, kernel.w / 2)
        self.method = method
        box = method == .box ? BoxKernel(weight: weight, bias: bias) : nil
    }

    var inputs: Int { weight.shape[1] }

    /// [T, Cin, H, W] to [T, Cout, H, W], then ReLU when `relu` is set.
    func callAsFunction(_ x: Tensor, relu: Bool = false) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inputs, "Conv3d: input \(x.shape) for weight \(weight.shape)")
        if let box { return boxConvolution([x], box, relu: relu) }
        var out = method == .tapProducts
            ? conv3dByTapProducts(x, weight: weight, bias: bias, padding: padding)
            : conv3d(x, weight: weight, bias: bias, padding: padding)
        if relu { out.formRelu() }
        return out
    }
}

/// nn.Linear over the last axis: [..., Cin] to [..., Cout].
struct Linear {
    let weight: Tensor      // [Cout, Cin]
    let bias: Tensor?       // [Cout], nil for bias=False

    /// Binds `<w>.weight`, and `<w>.bias` when the layer has one.
    init(_ w: WeightScope, in cin: Int, out cout: Int, bias hasBias: Bool = true) {
        weight = w.tensor("weight", [cout, cin])
        bias = hasBias ? w.tensor("bias", [cout]) : nil
    }

    var inputs: Int { weight.shape[1] }
    var outputs: Int { weight.shape[0] }

    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape.last == inputs, "Linear: input \(x.shape) for weight \(weight.shape)")
        return linear(x, weight: weight, bias: bias)
    }
}

/// nn.LayerNorm over the last axis (eps 1e-5, with its affine weight and bias): [..., C] to [..., C].
struct LayerNorm {
    let weight: Tensor      // [C]
    let bias: Tensor        // [C]

    /// Binds `<w>.weight` and `<w>.bias`.
    init(_ w: WeightScope, channels c: Int) {
        weight = w.tensor("weight", [c])
        bias = w.tensor("bias", [c])
    }

    var channels: Int { weight.count }

    func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape.last == channels, "LayerNorm: input \(x.shape) for \(channels) channels")
        return layerNorm(x, weight: weight, bias: bias)
    }
}
