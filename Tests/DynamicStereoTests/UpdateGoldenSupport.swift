// Golden-data helpers for the correlation and update-block tests: set A tensors, formula weights for
// one checkpoint prefix, and a closeness check that reports where the largest difference is.
import Checkpoint
import Foundation
import Media
import TensorKernels
import TestSupport
import XCTest

/// Reading set A's intermediates and building the formula weights the reference used.
enum UpdateGolden {
    /// `A/<name>.npy`, with a message naming the file when it is absent or unreadable.
    static func tensor(_ name: String) throws -> Tensor {
        let url = SharedData.goldenSet("A").appendingPathComponent(name + ".npy")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UpdateGoldenError.missing(url.path)
        }
        return try NPY.read(url)
    }

    private struct KeyEntry: Decodable {
        let name: String
        let shape: [Int]
    }

    /// A store holding the formula value of every checkpoint tensor under `prefix.` and nothing else,
    /// so that `verify()` proves the layer took exactly its own weights.
    static func formulaStore(prefix: String) throws -> WeightStore {
        WeightStore(try formulaWeights(prefix: prefix))
    }

    /// The formula value of every checkpoint tensor under `prefix.`, by name.
    static func formulaWeights(prefix: String) throws -> [String: Tensor] {
        let url = SharedData.pth.appendingPathComponent("dynamic_stereo_keys.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UpdateGoldenError.missing(url.path)
        }
        let keys = try JSONDecoder().decode([KeyEntry].self, from: Data(contentsOf: url))
        let chosen = keys.filter { $0.name.hasPrefix(prefix + ".") }.map { (name: $0.name, shape: $0.shape) }
        guard !chosen.isEmpty else { throw UpdateGoldenError.noWeights(prefix) }
        return FormulaWeights.stateDict(chosen)
    }

    /// Fails unless every element of `actual` is within `tolerance` of `expected`, reporting the largest
    /// difference, its position and both values.
    static func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        guard actual.shape == expected.shape else {
            XCTFail("\(what): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
            return
        }
        let (worst, index) = actual.maxAbsDifference(expected)
        let mean = actual.meanAbsDifference(expected)
        let message = "\(what): max |diff| \(worst) at \(expected.position(of: index)) "
            + "(got \(actual.data[index]), expected \(expected.data[index])), mean \(mean), tolerance \(tolerance)"
        if !(worst <= tolerance) {
            XCTFail(message, file: file, line: line)
        } else {
            print(message)
        }
    }
}

/// Why golden data could not be read.
enum UpdateGoldenError: Error, CustomStringConvertible {
    case missing(String)
    case noWeights(String)

    var description: String {
        switch self {
        case let .missing(path): return "golden file \(path) is missing (is ../shared present?)"
        case let .noWeights(prefix): return "dynamic_stereo_keys.json has no tensors under \(prefix)."
        }
    }
}

/// A small deterministic generator (SplitMix64) for random test inputs.
struct UpdateTestRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A uniform value in [low, high).
    mutating func next(_ low: Float, _ high: Float) -> Float {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return low + (high - low) * Float(z >> 40) * 0x1p-24
    }

    mutating func tensor(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, data: (0..<count).map { _ in next(low, high) })
    }
}
