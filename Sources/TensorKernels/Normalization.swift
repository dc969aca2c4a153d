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

/// `instanceNorm` in place, fused with what follows it in the feature encoder: after normalising, adds
/// `residual` (same shape) when given, then applies ReLU when `relu` is set. One parallel task per plane
/// reads it twice for the statistics and writes it once; `instanceNorm(x)` (+ residual) (.relu()) would make
/// two or three more passes and as many tensors.
///
/// Same values as that chain up to the rounding of the statistics: they are double sums here too, taken in
/// eight interleaved partial sums (one dependency chain per element kept the plain loop latency-bound).
public func formInstanceNorm(_ x: inout Tensor, adding residual: Tensor? = nil, relu: Bool, eps: Float = 1e-5) {
    let (n, c, h, w) = x.dims4
    precondition(residual.map { $0.shape == x.shape } ?? true,
                 "formInstanceNorm: residual \(residual?.shape ?? []) beside \(x.shape)")
    let plane = h * w
    guard plane > 0 else { return }
    let empty: [Float] = []
    x.data.withUnsafeMutableBufferPointer { xb in
    (residual?.data ?? empty).withUnsafeBufferPointer { rb in
        parallelFor(n * c) { range in
            for p in range {
                let base = xb.baseAddress! + p * plane
                let mean = planeSum(base, count: plane, minus: nil) / Double(plane)
                let squares = planeSum(base, count: plane, minus: mean)
                let inv = 1 / (squares / Double(plane) + Double(eps)).squareRoot()
                // The four cases apart, so that each loop is branch-free. rb holds n·c·plane values when a
                // residual is given (checked above); i < plane stays inside this plane of both.
                switch (rb.isEmpty, relu) {
                case (true, false):
                    for i in 0..<plane { base[i] = Float((Double(base[i]) - mean) * inv) }
                case (true, true):
                    for i in 0..<plane { base[i] = max(Float((Double(base[i]) - mean) * inv), 0) }
                case (false, false):
                    let add = rb.baseAddress! + p * plane
                    for i in 0..<plane { base[i] = Float((Double(base[i]) - mean) * inv) + add[i] }
                case (false, true):
                    let add = rb.baseAddress! + p * plane
                    for i in 0..<plane { base[i] = max(Float((Double(base[i]) - mean) * inv) + add[i], 0) }
                }
            }
        }
    }}
}

/// Σ values[i] (or, given `minus`, Σ (values[i] - minus)²) for i < count in double precision, as eight
/// interleaved partial sums added at the end.
@inline(__always)
private func planeSum(_ values: UnsafePointer<Float>, count: Int, minus: Double?) -> Double {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    var tail = 0.0
    var i = 0
    if let m = minus {
        while i + 8 <= count {
            // i + 7 < count.
            var d = Double(values[i]) - m; s0 += d * d
            d = Double(values[i + 1]) - m; s1 += d * d
            d = Double(values[i + 2]) - m; s2 += d * d
            d = Double(values[i + 3]) - m; s3 += d * d
            d = Double(values[i + 4]) - m; s4 += d * d
            d = Double(values[i + 5]) - m; s5 += d * d
            d = Double(values[i + 6]) - m; s6 += d * d
            d = Double(values[i + 7]) - m; s7 += d * d
            i += 8
        }
        while i < count { let d = Double(values[i]) - m; tail += d * d; i += 1 }
    } else {
        while i + 8 <= count {
            // i + 7 < count.
            s0 += Double(values[i]); s1 += Double(values[i + 1]); s2 += Double(values[i + 2]); s3 += Double(values[i + 3])
            s4 += Double(values[i + 4]); s5 += Double(values[i + 5]); s6 += Double(values[i + 6]); s7 += Double(values[i + 7])
            i += 8
        }
        while i < count { tail += Double(values[i]); i += 1 }
    }
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + tail
}
