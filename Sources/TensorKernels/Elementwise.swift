// Element-wise maps and channel bookkeeping on [N, C, H, W] tensors.
import Foundation

/// Elements per thread below which an element-wise pass stays on one thread (thread hand-off costs more).
public let elementwiseChunk = 1 << 15

extension Tensor {
    /// Applies `f` to every element, on `ComputeThreads.count` cores for large tensors (these passes are
    /// memory-bound, and a single thread leaves half the machine idle between the sgemms).
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        Tensor(shape: shape) { out in
            data.withUnsafeBufferPointer { src in
                parallelFor(src.count, minimumPerThread: elementwiseChunk) { range in
                    // range lies in 0..<count of both buffers.
                    for i in range { out[i] = f(src[i]) }
                }
            }
        }
    }

    public func relu() -> Tensor { map { max($0, 0) } }

    /// relu in place: no second tensor of the same size while the first is alive.
    public mutating func formRelu() {
        data.withUnsafeMutableBufferPointer { b in
            parallelFor(b.count, minimumPerThread: elementwiseChunk) { range in
                // range lies in 0..<count.
                for i in range { b[i] = max(b[i], 0) }
            }
        }
    }
    public func tanh() -> Tensor { map { Foundation.tanh($0) } }
    public func sigmoid() -> Tensor { map { 1 / (1 + Foundation.exp(-$0)) } }
    /// elu(x) + 1, the positive feature map of linear attention.
    public func eluPlusOne() -> Tensor { map { $0 > 0 ? $0 + 1 : Foundation.exp($0) } }

    /// Combines two same-shaped tensors element by element.
    @inlinable
    public func zipWith(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        return Tensor(shape: shape) { out in
            data.withUnsafeBufferPointer { a in
                other.data.withUnsafeBufferPointer { b in
                    parallelFor(a.count, minimumPerThread: elementwiseChunk) { range in
                        // range lies in 0..<count of all three buffers.
                        for i in range { out[i] = f(a[i], b[i]) }
                    }
                }
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zipWith(b, *) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }
    public static func * (s: Float, a: Tensor) -> Tensor { a.map { s * $0 } }
    public static func / (a: Tensor, s: Float) -> Tensor { a.map { $0 / s } }
}

/// Concatenates [N, Ci, H, W] tensors along the channel axis.
public func concatChannels(_ parts: [Tensor]) -> Tensor {
    precondition(!parts.isEmpty, "nothing to concatenate")
    let (n, _, h, w) = parts[0].dims4
    let channels = parts.map { part -> Int in
        let (pn, pc, ph, pw) = part.dims4
        precondition(pn == n && ph == h && pw == w, "cannot concatenate \(part.shape) beside \(parts[0].shape)")
        return pc
    }
    let total = channels.reduce(0, +)
    let plane = h * w
    return Tensor(shape: [n, total, h, w]) { out in
        var offset = 0
        for image in 0..<n {
            for (part, c) in zip(parts, channels) {
                part.data.withUnsafeBufferPointer { src in
                    let from = src.baseAddress! + image * c * plane
                    (out.baseAddress! + offset).update(from: from, count: c * plane)
                }
                offset += c * plane
            }
        }
    }
}

/// Splits [N, C, H, W] along channels into pieces of `sizes` channels (which must add up to C).
public func splitChannels(_ x: Tensor, _ sizes: [Int]) -> [Tensor] {
    let (n, c, h, w) = x.dims4
    precondition(sizes.reduce(0, +) == c, "split sizes \(sizes) do not add up to \(c) channels")
    let plane = h * w
    var start = 0
    return sizes.map { size in
        defer { start += size }
        let from = start
        return Tensor(shape: [n, size, h, w]) { out in
            x.data.withUnsafeBufferPointer { src in
                for image in 0..<n {
                    (out.baseAddress! + image * size * plane)
                        .update(from: src.baseAddress! + (image * c + from) * plane, count: size * plane)
                }
            }
        }
    }
}
