// Dense float32 tensors: the one value type every kernel and model layer works on.

/// A dense, row-major (C order) float32 tensor.
///
/// Image batches are laid out like PyTorch's: `[N, C, H, W]`, with N the frames of a window.
/// Storage is a Swift array, so copies are copy-on-write and kernels write into fresh tensors.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor that takes ownership of `data`, whose count must match `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) values")
        self.shape = shape
        self.data = data
    }

    /// A tensor of `shape` whose storage is written by `body` (every element must be set).
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.shape = shape
        self.data = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            body(buffer)
            initialized = count
        }
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    /// The dimensions of a rank-4 tensor; a precondition failure names the actual shape otherwise.
    public var dims4: (Int, Int, Int, Int) {
        precondition(shape.count == 4, "expected a rank-4 tensor, got shape \(shape)")
        return (shape[0], shape[1], shape[2], shape[3])
    }

    /// The dimensions of a rank-3 tensor.
    public var dims3: (Int, Int, Int) {
        precondition(shape.count == 3, "expected a rank-3 tensor, got shape \(shape)")
        return (shape[0], shape[1], shape[2])
    }

    /// The dimensions of a rank-2 tensor.
    public var dims2: (Int, Int) {
        precondition(shape.count == 2, "expected a rank-2 tensor, got shape \(shape)")
        return (shape[0], shape[1])
    }

    /// The same values under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// Rows `range` of the leading dimension (frames of a batch, for example).
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(!shape.isEmpty && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "slice \(range) out of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, data: Array(data[(range.lowerBound * inner)..<(range.upperBound * inner)]))
    }

    /// Concatenates tensors along the leading dimension.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let inner = Array(parts[0].shape.dropFirst())
        var lead = 0
        var data: [Float] = []
        data.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts {
            precondition(Array(part.shape.dropFirst()) == inner, "cannot concatenate \(part.shape) after \(parts[0].shape)")
            lead += part.shape[0]
            data.append(contentsOf: part.data)
        }
        return Tensor(shape: [lead] + inner, data: data)
    }

    /// The largest absolute element-wise difference to `other` and its flat index.
    public func maxAbsDifference(_ other: Tensor) -> (value: Float, index: Int) {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        var best: Float = 0
        var at = 0
        for i in 0..<data.count {
            let d = abs(data[i] - other.data[i])
            if d > best || d.isNaN { best = d; at = i; if d.isNaN { break } }
        }
        return (best, at)
    }

    /// The mean absolute element-wise difference to `other`, accumulated in double precision.
    public func meanAbsDifference(_ other: Tensor) -> Double {
        precondition(shape == other.shape, "shapes differ: \(shape) vs \(other.shape)")
        guard !data.isEmpty else { return 0 }
        var sum = 0.0
        for i in 0..<data.count { sum += Double(abs(data[i] - other.data[i])) }
        return sum / Double(data.count)
    }

    /// The multi-index of flat position `index`, for error messages.
    public func position(of index: Int) -> [Int] {
        var rest = index
        var result = [Int](repeating: 0, count: shape.count)
        for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] > 0 {
            result[axis] = rest % shape[axis]
            rest /= shape[axis]
        }
        return result
    }
}
