// Branch-free exp, sigmoid and tanh for the GRU's gate loops, with libm's as their reference.
//
// Where the time goes: each GRU step evaluates two sigmoids and a tanh per hidden value, and libm's expf and
// tanhf are opaque calls that keep those loops scalar. These versions use only arithmetic and bit moves, so the
// compiler vectorises the loops; they stay within a few float ulps of libm (see ActivationTests).

/// e^x for float x: x = n·ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error below
/// 1e-8 relative), 2^n by writing the exponent bits. Inputs are clamped to [-87, 88], the normal range.
@inlinable @inline(__always)
public func fastExp(_ x: Float) -> Float {
    let x = min(max(x, -87), 88)
    // Adding 1.5·2^23 rounds x·log2(e) to an integer n held in the low mantissa bits of `shifted`.
    let shifted = x * 1.442_695_04 + 12_582_912
    let n = shifted - 12_582_912
    // ln 2 split in two so that n·ln2hi is exact (Cody and Waite).
    let r = x - n * 0.693_145_751_953_125 - n * 1.428_606_765_330_187e-6
    var p: Float = 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    // The low bits of `shifted` are n (two's complement); shifting n + 127 into the exponent field is 2^n.
    let scale = Float(bitPattern: (shifted.bitPattern &+ 127) &<< 23)
    return p * scale
}

/// The logistic function 1 / (1 + e^-x) on `fastExp`.
@inlinable @inline(__always)
public func fastSigmoid(_ x: Float) -> Float {
    1 / (1 + fastExp(-x))
}

/// tanh x = 1 - 2 / (e^2x + 1) on `fastExp`: absolute error of a few 1e-8 (relative error grows near 0,
/// where the result is below the absolute error's scale anyway).
@inlinable @inline(__always)
public func fastTanh(_ x: Float) -> Float {
    1 - 2 / (fastExp(2 * x) + 1)
}
