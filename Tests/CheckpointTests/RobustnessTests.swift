// Damaged checkpoints: random truncations and byte flips must throw or load consistently, never crash.
@testable import Checkpoint
import Foundation
import TestSupport
import XCTest

final class RobustnessTests: XCTestCase {
    /// Loads `bytes` and converts every tensor. Returns whether it loaded; a load must give consistent tensors.
    @discardableResult
    func loadFully(_ bytes: [UInt8], _ label: String) -> Bool {
        do {
            let stateDict = try StateDict.load(data: Data(bytes))
            for (name, tensor) in stateDict.entries {
                let values = try tensor.floats()
                XCTAssertEqual(values.count, tensor.shape.reduce(1, *), "\(label): \(name)")
            }
            return true
        } catch let error as CheckpointError {
            XCTAssertFalse("\(error)".contains("\n"), "\(label): \(error)")
            return false
        } catch {
            XCTFail("\(label): an error outside CheckpointError: \(error)")
            return false
        }
    }

    func goldenBytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: SharedData.pth.appendingPathComponent(file)))
    }

    func testEveryTruncationOfAZipCheckpointThrows() throws {
        let bytes = try goldenBytes("plain.pth")
        // Every length: cutting a zip anywhere loses its end record.
        for length in 0..<bytes.count {
            XCTAssertFalse(loadFully(Array(bytes.prefix(length)), "plain.pth cut at \(length)"), "cut at \(length) loaded")
        }
    }

    func testRandomByteFlipsOfAZipCheckpoint() throws {
        let bytes = try goldenBytes("plain.pth")
        var random = SeededGenerator(seed: 1)
        var refused = 0
        for iteration in 0..<1500 {
            var mutated = bytes
            for _ in 0...random.below(3) { mutated[random.below(mutated.count)] ^= UInt8(1 + random.below(255)) }
            if !loadFully(mutated, "plain.pth flip \(iteration)") { refused += 1 }
        }
        // Most flips land in checksummed entries or in the directory, so most files are refused.
        XCTAssertGreaterThan(refused, 750)
    }

    /// Mutates plain.pth's pickle and repacks it with valid checksums, so the VM itself sees the damage.
    func testRandomDamageToThePickle() throws {
        let file = try FileBytes(mapping: SharedData.pth.appendingPathComponent("plain.pth"))
        let archive = try ZipArchive(file.whole)
        let entries = try archive.names.map { name -> (String, [UInt8]) in
            let region = try archive.contents(of: name)
            return (name, region.bytes(0, region.count))
        }
        let pickleIndex = try XCTUnwrap(entries.firstIndex { $0.0 == "plain/data.pkl" })
        let pickle = entries[pickleIndex].1
        var random = SeededGenerator(seed: 2)
        var loaded = 0
        for iteration in 0..<1500 {
            var mutated = pickle
            switch iteration % 3 {
            case 0: mutated = Array(mutated.prefix(random.below(mutated.count)))
            case 1: for _ in 0...random.below(3) { mutated[random.below(mutated.count)] ^= UInt8(1 + random.below(255)) }
            default: mutated[random.below(mutated.count)] = UInt8(random.below(256))  // often a valid opcode elsewhere
            }
            var writer = ZipWriter()
            writer.entries = entries.enumerated().map { index, entry in
                (entry.0, index == pickleIndex ? mutated : entry.1, EntryMethod.stored)
            }
            if loadFully(writer.archive(), "pickle damage \(iteration)") { loaded += 1 }
        }
        // Some single-byte changes (inside a float payload or a name) still describe a valid state dict.
        XCTAssertGreaterThan(loaded, 0)
        XCTAssertLessThan(loaded, 1500)
    }

    func testRandomDamageToALegacyCheckpoint() throws {
        let bytes = try goldenBytes("legacy_format.pth")
        for length in 0..<bytes.count {
            XCTAssertFalse(loadFully(Array(bytes.prefix(length)), "legacy cut at \(length)"), "cut at \(length) loaded")
        }
        var random = SeededGenerator(seed: 3)
        for iteration in 0..<1500 {
            var mutated = bytes
            for _ in 0...random.below(3) { mutated[random.below(mutated.count)] ^= UInt8(1 + random.below(255)) }
            loadFully(mutated, "legacy flip \(iteration)")
        }
    }
}
