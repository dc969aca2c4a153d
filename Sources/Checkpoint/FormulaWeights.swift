// The deterministic weight formula of the golden data (shared/golden/weights.py), bit for bit.
import TensorKernels

/// Weights that a formula generates from each tensor's name and shape.
///
/// They make the network runnable and testable without a checkpoint file: the golden reference outputs
/// were computed with exactly these values. They are not a trained depth model.
public enum FormulaWeights {
    static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// FNV-1a, 64-bit, over the UTF-8 bytes of `name`.
    public static func fnv1a64(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// The first `count` uniform values in [-1, 1) of the stream seeded by `name`.
    public static func uniform(_ name: String, count: Int) -> [Float] {
        let seed = fnv1a64(name)
        return (0..<count).map { i in
            var z = seed &+ UInt64(i + 1) &* golden
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z = z ^ (z >> 31)
            return Float(z >> 40) * 0x1p-23 - 1
        }
    }

    /// The value of tensor `name` with `shape`, by the rule for its rank and name.
    public static func tensor(name: String, shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        let u = uniform(name, count: count)
        let values: [Float]
        if shape.count >= 2 {
            let fanIn = shape.dropFirst().reduce(1, *)
            let bound = Float((3.0 / Double(fanIn)).squareRoot())
            values = u.map { $0 * bound }
        } else if name.hasSuffix(".bias") {
            values = u.map { $0 * Float(0.1) }
        } else {
            values = u.map { 1 + $0 * Float(0.1) }
        }
        return Tensor(shape: shape, data: values)
    }

    /// A full state dict for the given names and shapes.
    public static func stateDict(_ entries: [(name: String, shape: [Int])]) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for entry in entries { result[entry.name] = tensor(name: entry.name, shape: entry.shape) }
        return result
    }
}
