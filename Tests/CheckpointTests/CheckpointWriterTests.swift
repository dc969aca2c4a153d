// CheckpointWriter: what it writes loads strictly through the reader, value for value, in torch.save's layout.
@testable import Checkpoint
import Foundation
import TensorKernels
import XCTest

final class CheckpointWriterTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Names and shapes of the kinds the network has: conv weights, biases, norms, an embedding, odd sizes.
    private let entries: [(name: String, shape: [Int])] = [
        ("fnet.conv1.weight", [64, 3, 7, 7]),
        ("fnet.conv1.bias", [64]),
        ("fnet.norm1.weight", [64]),
        ("time_embed", [1, 5, 256]),
        ("update_block04.gru.convz1.weight", [128, 384, 1, 1, 5]),
        ("odd", [3, 7]),
        ("scalar_like", [1]),
    ]

    func testWrittenFormulaWeightsLoadBackInOrderBitForBit() throws {
        let url = scratch.appendingPathComponent("formula.pth")
        let tensors = entries.map { ($0.name, FormulaWeights.tensor(name: $0.name, shape: $0.shape)) }
        try CheckpointWriter.write(tensors, to: url)

        let loaded = try StateDict.load(url)
        XCTAssertEqual(loaded.names, entries.map(\.name))
        XCTAssertEqual(loaded.parameterCount, entries.reduce(0) { $0 + $1.shape.reduce(1, *) })
        let floats = try loaded.floatTensors()
        for (name, expected) in tensors {
            let tensor = try XCTUnwrap(floats[name], name)
            XCTAssertEqual(tensor.shape, expected.shape, name)
            XCTAssertEqual(tensor.data.map(\.bitPattern), expected.data.map(\.bitPattern), name)
            XCTAssertEqual(loaded[name]?.dtype, .float32, name)
        }
        // Strictly: a store of exactly these tensors, all taken at their shapes, verifies.
        let store = WeightStore(floats)
        for entry in entries { _ = store.root.tensor(entry.name, entry.shape) }
        XCTAssertNoThrow(try store.verify())
    }

    func testEntriesAreStoredOnSixtyFourByteBoundariesLikeTorchSave() throws {
        let url = scratch.appendingPathComponent("aligned.pth")
        try CheckpointWriter.write(entries.map { ($0.name, FormulaWeights.tensor(name: $0.name, shape: $0.shape)) }, to: url)
        let archive = try ZipArchive(FileBytes(mapping: url).whole)
        XCTAssertEqual(Set(archive.names), Set(["archive/data.pkl", "archive/byteorder", "archive/version"]
            + entries.indices.map { "archive/data/\($0)" }))
        XCTAssertEqual(String(decoding: try archive.contents(of: "archive/byteorder").bytes(0, 6), as: UTF8.self), "little")
        for index in entries.indices {
            let region = try archive.contents(of: "archive/data/\(index)")
            XCTAssertEqual(region.offset % 64, 0, "data/\(index) starts at byte \(region.offset)")
            XCTAssertEqual(region.count, entries[index].shape.reduce(1, *) * 4)
        }
    }

    func testAnEmptyStateDictAndAReplacedFile() throws {
        let url = scratch.appendingPathComponent("replaced.pth")
        try Data("not a checkpoint".utf8).write(to: url)
        try CheckpointWriter.write([], to: url)
        XCTAssertEqual(try StateDict.load(url).names, [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["replaced.pth"], "no partial file is left")
    }

    func testADuplicateNameIsRefusedAndNothingIsWritten() throws {
        let url = scratch.appendingPathComponent("duplicate.pth")
        let tensor = Tensor(shape: [2], data: [1, 2])
        XCTAssertThrowsError(try CheckpointWriter.write([("a", tensor), ("a", tensor)], to: url)) { error in
            XCTAssertEqual(error as? CheckpointError, .duplicateName("a"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }
}
