// Layer normalization, instance normalization and the linear layer.

/// y = x · Wᵀ + b over the last axis: `x` [..., Cin], `weight` [Cout, Cin] (PyTorch nn.Linear), `bias` [Cout].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    let (cout, cin) = weight.dims2
    precondition(x.shape.last == cin, "linear: input \(x.shape) does not end in \(cin)")
    let rows = x.count / max(cin, 1)
    var outShape = x.shape
    outShape[outShape.count - 1] = cout
    var out = Tensor(shape: outShape)
    out.data.withUnsafeMutableBufferPointer { o in
        if let bias {
            precondition(bias.count == cout, "linear: bias has \(bias.count) values for \(cout) outputs")
            for r in 0..<rows { for c in 0..<cout { o[r * cout + c] = bias.data[c] } }
        }
        x.data.withUnsafeBufferPointer { xb in
            weight.data.withUnsafeBufferPointer { wb in
                BLAS.sgemm(transB: true, m: rows, n: cout, k: cin, a: xb.baseAddress!, lda: cin,
                           b: wb.baseAddress!, ldb: cin, beta: bias == nil ? 0 : 1, c: o.baseAddress!, ldc: cout)
            }
        }
    }
    return out
}

/// Layer normalization over the last axis (PyTorch nn.LayerNorm, eps 1e-5).
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-5) -> Tensor {
    let c = x.shape.last!
    precondition(weight.count == c && bias.count == c, "layerNorm: \(weight.shape)/\(bias.shape) for \(x.shape)")
    let rows = x.count / max(c, 1)
    var out = x
    out.data.withUnsafeMutableBufferPointer { o in
        weight.data.withUnsafeBufferPointer { wb in
            bias.data.withUnsafeBufferPointer { bb in
                parallelFor(rows, minimumPerThread: 64) { range in
                    for r in range {
                        let row = o.baseAddress! + r * c
                        var sum = 0.0
                        for i in 0..<c { sum += Double(row[i]) }
                        let mean = sum / Double(c)
                        var sq = 0.0
                        for i in 0..<c { let d = Double(row[i]) - mean; sq += d * d }
                        let inv = 1 / (sq / Double(c) + Double(eps)).squareRoot()
                        for i in 0..<c { row[i] = Float((Double(row[i]) - mean) * inv) * wb[i] + bb[i] }
                    }
                }
            }
        }
    }
    return out
}

/// Instance normalization without affine parameters (PyTorch nn.InstanceNorm2d, eps 1e-5):
/// each (image, channel) plane of [N, C, H, W] to zero mean and unit biased variance.
public func instanceNorm(_ x: Tensor, eps: Float = 1e-5) -> Tensor {
    let (n, c, h, w) = x.dims4
    let plane = h * w
    var out = x
    out.data.withUnsafeMutableBufferPointer { o in
        parallelFor(n * c) { range in
            for p in range {
                let base = o.baseAddress! + p * plane
                var sum = 0.0
                for i in 0..<plane { sum += Double(base[i]) }
                let mean = sum / Double(plane)
                var sq = 0.0
                for i in 0..<plane { let d = Double(base[i]) - mean; sq += d * d }
                let inv = 1 / (sq / Double(plane) + Double(eps)).squareRoot()
                for i in 0..<plane { base[i] = Float((Double(base[i]) - mean) * inv) }
            }
        }
    }
    return out
}
