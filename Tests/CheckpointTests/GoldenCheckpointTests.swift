// The checkpoint cases of ../shared/golden/pth against expected.json, written by PyTorch itself.
import Checkpoint
import Foundation
import TestSupport
import XCTest

final class GoldenCheckpointTests: XCTestCase {
    /// expected.json: file -> tensor name -> {dtype, shape, sum, first, values?}.
    func expected() throws -> [String: [String: [String: Any]]] {
        let data = try Data(contentsOf: SharedData.pth.appendingPathComponent("expected.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: [String: Any]]])
    }

    /// Checks every tensor of `file` against expected.json, where `rename` maps the file's key to ours.
    func check(_ file: String, rename: (String) -> String = { $0 }) throws {
        let cases = try XCTUnwrap(try expected()[file], "\(file) missing from expected.json")
        let stateDict = try StateDict.load(SharedData.pth.appendingPathComponent(file))
        XCTAssertEqual(Set(stateDict.names), Set(cases.keys.map(rename)), file)
        XCTAssertEqual(stateDict.entries.count, cases.count, "\(file): no name may appear twice")
        for (rawName, want) in cases {
            let name = rename(rawName)
            let tensor = try XCTUnwrap(stateDict[name], "\(file): \(name)")
            XCTAssertEqual(tensor.dtype.rawValue, want["dtype"] as? String, "\(file): \(name) dtype")
            XCTAssertEqual(tensor.shape, want["shape"] as? [Int], "\(file): \(name) shape")
            let values = try tensor.floats()
            XCTAssertEqual(values.count, tensor.shape.reduce(1, *), "\(file): \(name) count")
            // Values are compared exactly: each expected number is a float32 (or a value float32 rounds the
            // same way, like the float64 1e-300 that becomes 0), printed by Python as a float64.
            let first = try XCTUnwrap(want["first"] as? [Double])
            XCTAssertEqual(Array(values.prefix(first.count)), first.map { Float($0) }, "\(file): \(name) first values")
            if let all = want["values"] as? [Double] {
                XCTAssertEqual(values, all.map { Float($0) }, "\(file): \(name) values")
            }
            // The sum was taken in float64 over the original values; summing the float32 conversions in float64
            // differs only where float32 rounds (the 1e-300 of the float64 case), far below 1e-6 relative.
            let sum = try XCTUnwrap(want["sum"] as? Double)
            let actual = values.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(actual, sum, accuracy: 1e-6 * max(1, abs(sum)), "\(file): \(name) sum")
        }
    }

    func testPlainStateDictWithViewsSharedStorageAndAllDTypes() throws {
        try check("plain.pth")
        let stateDict = try StateDict.load(SharedData.pth.appendingPathComponent("plain.pth"))
        // The file order, not a sorted one: the network and the CLI list tensors as torch.save wrote them.
        XCTAssertEqual(stateDict.names, ["contiguous", "transposed_view", "offset_view", "shares_storage_with_offset_view",
                                         "half", "bfloat16", "double", "int64", "scalar", "empty", "bool"])
        XCTAssertEqual(stateDict["transposed_view"]?.isContiguous, false)
        XCTAssertEqual(stateDict["scalar"]?.shape, [])
        XCTAssertEqual(stateDict.parameterCount, 104)
    }

    func testTrainingCheckpointYieldsTheModelWeightsWithoutModulePrefix() throws {
        try check("train_format.pth") { name in
            name.hasPrefix("module.") ? String(name.dropFirst("module.".count)) : name
        }
        let stateDict = try StateDict.load(SharedData.pth.appendingPathComponent("train_format.pth"))
        XCTAssertEqual(stateDict.names, ["0.weight", "0.bias", "2.weight", "2.bias"], "only the model, in file order")
    }

    func testLegacyFormatIsRead() throws {
        try check("legacy_format.pth")
    }

    func testEvilPickleIsRefusedNamingTheGlobalAndRunsNothing() throws {
        let marker = "/tmp/pth_pwned_42"
        try? FileManager.default.removeItem(atPath: marker)
        XCTAssertThrowsError(try StateDict.load(SharedData.pth.appendingPathComponent("evil.pth"))) { error in
            XCTAssertEqual(error as? CheckpointError, .forbiddenGlobal("os.system"))
            XCTAssertTrue("\(error)".contains("os.system"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the pickle's command ran")
    }

    func testTruncatedAndForeignFilesFailWithOneLineErrors() throws {
        for file in ["truncated.pth", "not_a_checkpoint.pth"] {
            XCTAssertThrowsError(try StateDict.load(SharedData.pth.appendingPathComponent(file)), file) { error in
                let message = "\(error)"
                XCTAssertFalse(message.isEmpty || message.contains("\n"), "\(file): \(message)")
                switch (file, error as? CheckpointError) {
                case ("truncated.pth", .truncated?), ("not_a_checkpoint.pth", .notACheckpoint?): break
                default: XCTFail("\(file): unexpected error \(message)")
                }
            }
        }
    }

    func testMissingFileAndDirectoryAreIOErrors() {
        XCTAssertThrowsError(try StateDict.load(URL(fileURLWithPath: "/nonexistent/model.pth"))) { error in
            guard case .io? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try StateDict.load(SharedData.pth)) { error in
            guard case .io? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testEmptyAndTinyInputsFailCleanly() {
        for bytes in [[], [0x80], [0x50, 0x4B, 0x03, 0x04], [0x50, 0x4B, 0x05, 0x06]] as [[UInt8]] {
            XCTAssertThrowsError(try StateDict.load(data: Data(bytes)), "\(bytes)")
        }
    }
}
