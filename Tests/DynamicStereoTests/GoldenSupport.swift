// Shared by the model's golden tests: formula weights, golden tensors, and a comparison that explains failures.
import Checkpoint
import Foundation
import Media
import TensorKernels
import TestSupport
import XCTest

/// Access to `../shared/golden` for the DynamicStereo tests.
enum Golden {
    private struct KeyEntry: Decodable {
        let name: String
        let shape: [Int]
    }

    /// Every state_dict name and shape of the real checkpoints (`pth/dynamic_stereo_keys.json`).
    static func checkpointKeys() throws -> [(name: String, shape: [Int])] {
        let url = SharedData.pth.appendingPathComponent("dynamic_stereo_keys.json")
        let entries = try JSONDecoder().decode([KeyEntry].self, from: Data(contentsOf: url))
        return entries.map { ($0.name, $0.shape) }
    }

    /// A store of the formula weights the golden data was computed with, holding only the tensors under
    /// `prefixes` (e.g. `"fnet"`, `"time_attn_blocks.0"`), so that `verify()` checks one module strictly.
    static func formulaWeights(under prefixes: [String]) throws -> WeightStore {
        WeightStore(try formulaTensors(under: prefixes))
    }

    /// The formula value of every checkpoint tensor under `prefixes`, by name.
    static func formulaTensors(under prefixes: [String]) throws -> [String: Tensor] {
        let selected = try checkpointKeys().filter { entry in
            prefixes.contains { entry.name == $0 || entry.name.hasPrefix($0 + ".") }
        }
        XCTAssertFalse(selected.isEmpty, "no checkpoint tensor under \(prefixes)")
        return FormulaWeights.stateDict(selected)
    }

    /// The complete formula state dict: every tensor of the real checkpoints, as the golden data used them.
    static func formulaStateDict() throws -> [String: Tensor] {
        FormulaWeights.stateDict(try checkpointKeys())
    }

    /// A tensor of golden set `set` (e.g. "A"), by file name without `.npy`.
    static func tensor(_ set: String, _ name: String) throws -> Tensor {
        try NPY.read(SharedData.goldenSet(set).appendingPathComponent(name + ".npy"))
    }

    /// The frames of one view of golden set `set` as decoded images, in file-name order.
    static func images(_ set: String, _ side: String) throws -> [RGBImage] {
        let folder = SharedData.goldenSet(set).appendingPathComponent(side)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".png") }.sorted()
        XCTAssertFalse(files.isEmpty, "no frames in \(folder.path)")
        return try files.map { try PNG.decodeRGB(Data(contentsOf: folder.appendingPathComponent($0))) }
    }

    /// The frames of one view of golden set `set` (`side` is "left" or "right") as the network's input:
    /// [T, 3, H, W] float32, 2 · (v / 255) - 1 per sample, each step rounded to float32 as PyTorch does.
    static func frames(_ set: String, _ side: String) throws -> Tensor {
        let folder = SharedData.goldenSet(set).appendingPathComponent(side)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".png") }.sorted()
        XCTAssertFalse(files.isEmpty, "no frames in \(folder.path)")
        let images = try files.map { try PNG.decodeRGB(Data(contentsOf: folder.appendingPathComponent($0))) }
        let (h, w) = (images[0].height, images[0].width)
        var tensor = Tensor(shape: [images.count, 3, h, w])
        for (index, image) in images.enumerated() {
            XCTAssertEqual([image.height, image.width], [h, w], "frame \(files[index]) differs in size")
            for channel in 0..<3 {
                for pixel in 0..<(h * w) {
                    let scaled = Float(image.pixels[pixel * 3 + channel]) / 255
                    tensor.data[(index * 3 + channel) * h * w + pixel] = 2 * scaled - 1
                }
            }
        }
        return tensor
    }

    /// Fails unless `actual` has `expected`'s shape and every element is within `maxAbs`;
    /// prints the largest difference, where it is, and the mean difference.
    static func assertClose(_ actual: Tensor, _ expected: Tensor, maxAbs tolerance: Float, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        guard actual.shape == expected.shape else {
            XCTFail("\(what): shape \(actual.shape), expected \(expected.shape)", file: file, line: line)
            return
        }
        let (worst, index) = actual.maxAbsDifference(expected)
        let mean = actual.meanAbsDifference(expected)
        let at = expected.position(of: index)
        let report = "max |diff| \(worst) at \(at) (got \(actual.data[index]), want \(expected.data[index])), mean \(mean)"
        print("\(what): \(report)")
        XCTAssert(worst <= tolerance, "\(what): \(report) exceeds \(tolerance)", file: file, line: line)
    }
}

extension SeededGenerator {
    /// A tensor of uniform values in [low, high).
    mutating func tensor(_ shape: [Int], _ low: Float = -1, _ high: Float = 1) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(shape: shape, data: (0..<count).map { _ in uniform(low, high) })
    }
}
