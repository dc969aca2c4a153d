// Zip variants torch.load accepts but the golden files do not exercise: other folder names, deflate, zip64, big-endian.
@testable import Checkpoint
import Foundation
import TestSupport
import XCTest

final class ArchiveVariantTests: XCTestCase {
    /// plain.pth's entries, read back through the reader's own zip code.
    func plainEntries() throws -> [(name: String, data: [UInt8])] {
        let bytes = try FileBytes(mapping: SharedData.pth.appendingPathComponent("plain.pth"))
        let archive = try ZipArchive(bytes.whole)
        return try archive.names.map { name in
            let region = try archive.contents(of: name)
            return (name, region.bytes(0, region.count))
        }
    }

    /// plain.pth repacked under another folder name with `method` and optionally zip64 records.
    func repackedPlain(folder: String, method: EntryMethod, zip64: Bool) throws -> Data {
        var writer = ZipWriter()
        writer.zip64 = zip64
        for (name, data) in try plainEntries() {
            let renamed = folder + name.drop(while: { $0 != "/" })
            writer.entries.append((renamed, data, method))
        }
        return Data(writer.archive())
    }

    func assertSameAsPlain(_ data: Data, _ label: String) throws {
        let reference = try StateDict.load(SharedData.pth.appendingPathComponent("plain.pth"))
        let variant = try StateDict.load(data: data)
        XCTAssertEqual(variant.names, reference.names, label)
        for ((name, a), (_, b)) in zip(variant.entries, reference.entries) {
            XCTAssertEqual(a.dtype, b.dtype, "\(label): \(name)")
            XCTAssertEqual(a.shape, b.shape, "\(label): \(name)")
            XCTAssertEqual(try a.floats(), try b.floats(), "\(label): \(name)")
        }
    }

    func testAnyArchiveFolderNameIsAccepted() throws {
        try assertSameAsPlain(try repackedPlain(folder: "archive", method: .stored, zip64: false), "archive/")
    }

    func testDeflatedEntriesAreInflated() throws {
        try assertSameAsPlain(try repackedPlain(folder: "weights", method: .deflated, zip64: false), "deflate")
    }

    func testZip64RecordsAreRead() throws {
        try assertSameAsPlain(try repackedPlain(folder: "plain", method: .stored, zip64: true), "zip64")
        try assertSameAsPlain(try repackedPlain(folder: "plain", method: .deflated, zip64: true), "zip64 + deflate")
    }

    func testDamagedEntryFailsItsChecksum() throws {
        var bytes = [UInt8](try repackedPlain(folder: "plain", method: .stored, zip64: false))
        // Flip a byte inside the first storage (plain/data/0 holds 0.48074960708618164 as its first float).
        let needle = Float(0.48074960708618164).littleEndianBytes
        let start = try XCTUnwrap((0...(bytes.count - 4)).first { Array(bytes[$0..<$0 + 4]) == needle })
        bytes[start] ^= 0x01
        XCTAssertThrowsError(try StateDict.load(data: Data(bytes))) { error in
            guard case let .corruptEntry(name, _)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "plain/data/0")
        }
    }

    func testBigEndianArchiveIsSwapped() throws {
        var pickle = PickleWriter()
        pickle.emptyDict()
        pickle.string("w")
        pickle.torchTensor(key: "0", storageSize: 2, shape: [2], strides: [1])
        pickle.setItem()
        pickle.stop()
        var writer = ZipWriter()
        writer.entries = [("be/data.pkl", pickle.bytes, .stored), ("be/byteorder", Array("big".utf8), .stored),
                          ("be/data/0", [Float(1.5), -2].flatMap { value -> [UInt8] in
                              var out: [UInt8] = []
                              out.le(value.bitPattern.byteSwapped)
                              return out
                          }, .stored)]
        let stateDict = try StateDict.load(data: Data(writer.archive()))
        XCTAssertEqual(try stateDict["w"]?.floats(), [1.5, -2])
    }

    func testStorageShorterThanDeclaredIsRefused() throws {
        var pickle = PickleWriter()
        pickle.emptyDict()
        pickle.string("w")
        pickle.torchTensor(key: "0", storageSize: 4, shape: [4], strides: [1])
        pickle.setItem()
        pickle.stop()
        var writer = ZipWriter()
        writer.entries = [("short/data.pkl", pickle.bytes, .stored), ("short/data/0", storageBytes([1, 2, 3]), .stored)]
        XCTAssertThrowsError(try StateDict.load(data: Data(writer.archive()))) { error in
            guard case .truncated? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testViewReachingPastItsStorageIsRefused() throws {
        var pickle = PickleWriter()
        pickle.emptyDict()
        pickle.string("w")
        pickle.torchTensor(key: "0", storageSize: 4, offset: 1, shape: [2, 2], strides: [2, 1])
        pickle.setItem()
        pickle.stop()
        var writer = ZipWriter()
        writer.entries = [("far/data.pkl", pickle.bytes, .stored), ("far/data/0", storageBytes([1, 2, 3, 4]), .stored)]
        XCTAssertThrowsError(try StateDict.load(data: Data(writer.archive()))) { error in
            XCTAssertEqual(error as? CheckpointError, .malformedTensor(
                name: "w", reason: "shape [2, 2] with strides [2, 1] at offset 1 reaches element 4 of a storage of 4"))
        }
    }

    func testArchiveWithoutPickleIsNotACheckpoint() throws {
        var writer = ZipWriter()
        writer.entries = [("photos/cat.png", [1, 2, 3], .stored)]
        XCTAssertThrowsError(try StateDict.load(data: Data(writer.archive()))) { error in
            guard case .notACheckpoint? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }
}
