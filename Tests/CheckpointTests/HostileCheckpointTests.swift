// Checkpoints built to exhaust memory: forged zip64 sizes, zip bombs that inflate truthfully, directories that
// understate, overlapping entries, pickles that only build values, views that multiply a storage. Each must be
// refused before the memory is taken, and on the command line as a one-line error with exit status 1.
@testable import Checkpoint
import CZlib
import Foundation
import TestSupport
import XCTest

final class HostileCheckpointTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-checkpoints-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: - Files

    /// Writes a zip64 archive of one deflated entry whose directory claims `uncompressedSize` and
    /// `compressedSize`; `payload` writes the compressed bytes (or leaves a hole, which reads as zeros).
    func writeZip64(_ name: String, entry: String = "archive/data.pkl", crc: UInt32, compressedSize: UInt64,
                    uncompressedSize: UInt64, payload: (FileHandle) throws -> Void) throws -> URL {
        let url = folder.appendingPathComponent(name)
        XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: nil))
        let file = try FileHandle(forWritingTo: url)
        defer { try? file.close() }
        let entryName = Array(entry.utf8)
        let saturated = UInt32(0xFFFF_FFFF)
        var local: [UInt8] = []
        local.le(UInt32(0x0403_4B50)); local.le(UInt16(45)); local.le(UInt16(0)); local.le(UInt16(8))
        local.le(UInt32(0)); local.le(crc); local.le(saturated); local.le(saturated)
        local.le(UInt16(entryName.count)); local.le(UInt16(20))
        local += entryName
        local.le(UInt16(1)); local.le(UInt16(16)); local.le(uncompressedSize); local.le(compressedSize)
        try file.write(contentsOf: local)
        try payload(file)
        let directoryOffset = UInt64(local.count) + compressedSize
        try file.truncate(atOffset: directoryOffset)  // a payload shorter than its claim leaves zeros (a hole)
        try file.seek(toOffset: directoryOffset)

        var tail: [UInt8] = []
        tail.le(UInt32(0x0201_4B50)); tail.le(UInt16(45)); tail.le(UInt16(45)); tail.le(UInt16(0)); tail.le(UInt16(8))
        tail.le(UInt32(0)); tail.le(crc); tail.le(saturated); tail.le(saturated)
        tail.le(UInt16(entryName.count)); tail.le(UInt16(28)); tail.le(UInt16(0)); tail.le(UInt16(0)); tail.le(UInt16(0))
        tail.le(UInt32(0)); tail.le(saturated)
        tail += entryName
        tail.le(UInt16(1)); tail.le(UInt16(24)); tail.le(uncompressedSize); tail.le(compressedSize); tail.le(UInt64(0))
        let directorySize = UInt64(tail.count)
        let recordOffset = directoryOffset + directorySize
        tail.le(UInt32(0x0606_4B50)); tail.le(UInt64(44)); tail.le(UInt16(45)); tail.le(UInt16(45))
        tail.le(UInt32(0)); tail.le(UInt32(0)); tail.le(UInt64(1)); tail.le(UInt64(1))
        tail.le(directorySize); tail.le(directoryOffset)
        tail.le(UInt32(0x0706_4B50)); tail.le(UInt32(0)); tail.le(recordOffset); tail.le(UInt32(1))
        tail.le(UInt32(0x0605_4B50)); tail.le(UInt16(0)); tail.le(UInt16(0)); tail.le(UInt16(0xFFFF)); tail.le(UInt16(0xFFFF))
        tail.le(saturated); tail.le(saturated); tail.le(UInt16(0))
        try file.write(contentsOf: tail)
        return url
    }

    /// A raw deflate stream of `mebibytes` MiB of zeros, made from one compressed MiB repeated: after a full
    /// flush a block refers to nothing before it, so copies of it decode one after another. Returns the
    /// stream and the CRC-32 of what it inflates to.
    func zerosStream(mebibytes: Int) -> (stream: [UInt8], crc: UInt32) {
        var stream = z_stream()
        precondition(deflateInit2_(&stream, 9, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var input = [UInt8](repeating: 0, count: 1 << 20)
        var output = [UInt8](repeating: 0, count: 1 << 16)
        func run(_ flush: Int32, length: Int) -> [UInt8] {
            input.withUnsafeMutableBufferPointer { source in
                output.withUnsafeMutableBufferPointer { target in
                    stream.next_in = source.baseAddress
                    stream.avail_in = uInt(length)
                    stream.next_out = target.baseAddress
                    stream.avail_out = uInt(target.count)
                    _ = CZlib.deflate(&stream, flush)
                    precondition(stream.avail_in == 0 && stream.avail_out > 0)
                    return Array(target.prefix(target.count - Int(stream.avail_out)))
                }
            }
        }
        let block = run(Z_FULL_FLUSH, length: 1 << 20)
        let end = run(Z_FINISH, length: 0)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(block.count * mebibytes + end.count)
        for _ in 0..<mebibytes { bytes += block }
        bytes += end
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let crcOfMebibyte = zeros.withUnsafeBufferPointer { CZlib.crc32(0, $0.baseAddress, uInt($0.count)) }
        var crc = CZlib.crc32(0, nil, 0)
        for _ in 0..<mebibytes { crc = crc32_combine(crc, crcOfMebibyte, 1 << 20) }
        return (bytes, UInt32(crc))
    }

    /// Runs a command and checks it failed the way a bad file must: exit 1, nothing on stdout, and a last
    /// line on stderr that is the error (`infer` reports progress on stderr first). Returns that line.
    @discardableResult
    func assertRefused(_ arguments: [String], _ mustContain: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try Executable.run(arguments)
        XCTAssertEqual(result.status, 1, "\(arguments[0]): \(result.stderr)", file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        let last = String(lines.last ?? "")
        XCTAssertTrue(last.hasPrefix("Error: "), "\(arguments[0]): \(result.stderr)", file: file, line: line)
        for text in mustContain { XCTAssertTrue(last.contains(text), "\(arguments[0]): '\(last)' lacks '\(text)'", file: file, line: line) }
        return last
    }

    /// `checkpoint`, `infer` and `work` must all refuse `url` with a message containing `mustContain`.
    func assertRefusedEverywhere(_ url: URL, _ mustContain: [String]) throws {
        try assertRefused(["checkpoint", url.path], mustContain)
        let frames = SharedData.goldenSet("A20")
        let output = folder.appendingPathComponent("out")
        try assertRefused(["infer", "--left", frames.appendingPathComponent("left").path,
                           "--right", frames.appendingPathComponent("right").path,
                           "--checkpoint", url.path, "--output", output.path], mustContain)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "infer wrote output for a refused checkpoint")
        // The worker loads its checkpoint before it opens the database, so an unreachable one is never tried.
        try assertRefused(["work", "--database", "postgresql://127.0.0.1:1/unused", "--checkpoint", url.path], mustContain)
    }

    // MARK: - Forged and truthful sizes

    /// The file: 40 MB whose zip64 directory says data.pkl inflates to 40 GiB. Refused on the claim,
    /// before any allocation (it used to abort on a failed 42,949,672,960-byte malloc).
    func testZip64DirectoryClaimingFortyGiBExitsOne() throws {
        let url = try writeZip64("claims-40GiB.pth", crc: 0, compressedSize: 40 << 20, uncompressedSize: 40 << 30) { _ in }
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0, 40 << 20)
        try assertRefusedEverywhere(url, ["archive/data.pkl", "claims 42949672960 bytes"])
    }

    /// A 4 MB file that really does inflate to 4 GiB of zeros, with a directory that says so and a correct
    /// CRC: its claim passes what the archive may inflate to, so nothing is inflated at all.
    func testTruthfulBombIsRefusedOnItsClaim() throws {
        let (stream, crc) = zerosStream(mebibytes: 4096)
        XCTAssertLessThan(stream.count, 5 << 20)
        let url = try writeZip64("inflates-to-4GiB.pth", crc: crc, compressedSize: UInt64(stream.count),
                                 uncompressedSize: 4 << 30) { try $0.write(contentsOf: stream) }
        try assertRefusedEverywhere(url, ["archive/data.pkl", "claims 4294967296 bytes", "may inflate to"])
    }

    /// The same kind of stream behind a directory that claims only 1 MiB: inflation stops at the claim.
    func testUnderstatedSizeIsRefusedOncePassed() throws {
        let (stream, crc) = zerosStream(mebibytes: 256)
        let url = try writeZip64("understates.pth", crc: crc, compressedSize: UInt64(stream.count),
                                 uncompressedSize: 1 << 20) { try $0.write(contentsOf: stream) }
        try assertRefused(["checkpoint", url.path], ["archive/data.pkl", "inflates past the 1048576 bytes"])
    }

    /// In the library: the inflate buffer follows what the stream holds, not what the directory claims.
    func testOverstatedSizeCostsOnlyWhatTheStreamHolds() throws {
        var random = SeededGenerator(seed: 17)
        let data = (0..<(1 << 20)).map { _ in UInt8(random.below(256)) }
        let raw = FileBytes(copying: ZipWriter.deflate(data)).whole
        // 512 MiB claimed (inside deflate's 1032:1 bound), 1 MiB present: refused as a short stream, and the
        // buffer grew only as far as the bytes that came out.
        XCTAssertThrowsError(try ZipArchive.inflate(raw, expected: 512 << 20, name: "x")) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .corruptEntry(name: "x", reason: "inflates to \(1 << 20) bytes, not \(512 << 20)"))
        }
        let exact = try ZipArchive.inflate(raw, expected: 1 << 20, name: "x")
        XCTAssertEqual(exact.bytes(0, exact.count), data)
    }

    /// What one archive inflates in all is capped, whatever each entry claims.
    func testInflateBudgetIsSharedByTheEntries() throws {
        var writer = ZipWriter()
        writer.entries = (0..<3).map { ("archive/data/\($0)", [UInt8](repeating: 7, count: 300_000), EntryMethod.deflated) }
        let archive = try ZipArchive(FileBytes(copying: writer.archive()).whole, inflateLimit: 700_000)
        XCTAssertEqual(try archive.contents(of: "archive/data/0").count, 300_000)
        XCTAssertEqual(try archive.contents(of: "archive/data/1").count, 300_000)
        XCTAssertEqual(archive.budget.remaining, 100_000)
        XCTAssertThrowsError(try archive.contents(of: "archive/data/2")) { error in
            XCTAssertTrue("\(error)".contains("700000 bytes in all"), "\(error)")
        }
    }

    /// Two directory records for one local header (how overlapping zip bombs reuse a stream) are refused.
    func testDirectoryRecordsSharingALocalHeaderAreRefused() throws {
        var writer = ZipWriter()
        writer.entries = [("archive/data/0", [1, 2, 3, 4], .stored), ("archive/data/1", [1, 2, 3, 4], .stored)]
        var bytes = writer.archive()
        // Point the second central record's local header offset (byte 42 of the record) at the first entry.
        let second = try XCTUnwrap(bytes.indices.filter { index in
            index + 4 <= bytes.count && Array(bytes[index..<index + 4]) == [0x50, 0x4B, 0x01, 0x02]
        }.dropFirst().first)
        bytes.replaceSubrange((second + 42)..<(second + 46), with: [0, 0, 0, 0])
        let archive = try ZipArchive(FileBytes(copying: bytes).whole)
        XCTAssertEqual(try archive.contents(of: "archive/data/0").count, 4)
        XCTAssertThrowsError(try archive.contents(of: "archive/data/1")) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .malformedArchive("the local header at byte 0 does not name archive/data/1"))
        }
    }

    /// A zip64 record that claims more entries than its directory can hold is refused before the loop.
    func testEntryCountBeyondTheDirectoryIsRefused() throws {
        var writer = ZipWriter()
        writer.zip64 = true
        writer.entries = [("archive/data.pkl", [0x80, 0x02, 0x7D, 0x2E], .stored)]
        var bytes = writer.archive()
        let record = try XCTUnwrap(bytes.indices.first { index in
            index + 4 <= bytes.count && Array(bytes[index..<index + 4]) == [0x50, 0x4B, 0x06, 0x06]
        })
        var count: [UInt8] = []
        count.le(UInt64(1) << 40)
        bytes.replaceSubrange((record + 32)..<(record + 40), with: count)
        XCTAssertThrowsError(try ZipArchive(FileBytes(copying: bytes).whole)) { error in
            XCTAssertTrue("\(error)".contains("claims 1099511627776 entries"), "\(error)")
        }
    }

    // MARK: - Pickles and views

    /// A pickle that builds nothing but values (here 5 million empty tuples in 5 MB) stops at the work limit,
    /// long before its arenas reach gigabytes.
    func testPickleThatOnlyBuildsValuesStopsAtTheWorkLimit() throws {
        var pickle: [UInt8] = [0x80, 0x02]
        pickle += [UInt8](repeating: 0x29, count: 5_000_000)  // EMPTY_TUPLE
        pickle.append(0x2E)
        var unpickler = Unpickler(FileBytes(copying: pickle).whole)
        XCTAssertThrowsError(try unpickler.load()) { error in
            XCTAssertTrue("\(error)".contains("builds more than \(1 << 22) values"), "\(error)")
        }
        XCTAssertLessThanOrEqual(unpickler.work, (1 << 22) + 1)
    }

    /// One list of pairs, memoized and handed to OrderedDict over and over: each call is charged its length.
    func testMemoizedPairsPassedToOrderedDictRepeatedlyAreCharged() throws {
        var pickle = PickleWriter()
        pickle.global("collections", "OrderedDict")
        pickle.op(0x71); pickle.bytes.append(0)  // BINPUT 0: the class
        pickle.mark()
        for index in 0..<2000 { pickle.mark(); pickle.int(index); pickle.none(); pickle.tuple() }
        pickle.op(0x6C)  // LIST
        pickle.op(0x71); pickle.bytes.append(1)  // BINPUT 1: the pairs
        pickle.op(0x30)  // POP
        pickle.op(0x30)  // POP the class
        pickle.emptyList()
        pickle.mark()
        for _ in 0..<3000 {
            pickle.op(0x68); pickle.bytes.append(0)  // BINGET the class
            pickle.op(0x68); pickle.bytes.append(1)  // BINGET the pairs
            pickle.op(0x85)  // TUPLE1
            pickle.reduce()
        }
        pickle.op(0x65)  // APPENDS
        pickle.stop()
        var unpickler = Unpickler(FileBytes(copying: pickle.bytes).whole)
        unpickler.workLimit = 1_000_000
        XCTAssertThrowsError(try unpickler.load()) { error in
            XCTAssertTrue("\(error)".contains("builds more than 1000000 values"), "\(error)")
        }
    }

    /// A few bytes of pickle per tensor can view one storage again and again; converting every view would
    /// need a copy each. Past four views of every stored value (plus an allowance) the file is refused.
    func testViewsThatMultiplyAStorageAreRefused() throws {
        let elements = 1 << 16
        var pickle = PickleWriter()
        pickle.op(0x7D)  // EMPTY_DICT
        pickle.mark()
        for index in 0..<1100 {
            pickle.string("view\(index)")
            pickle.torchTensor(key: "0", storageSize: elements, shape: [elements], strides: [1])
        }
        pickle.setItems()
        pickle.stop()
        var writer = ZipWriter()
        writer.entries = [("archive/data.pkl", pickle.bytes, .stored),
                          ("archive/data/0", [UInt8](repeating: 0, count: elements * 4), .stored)]
        XCTAssertThrowsError(try StateDict.load(data: Data(writer.archive()))) { error in
            guard case let .malformedTensor(name, reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            // 4 × 65,536 + 2^26 = 67,371,008 values are allowed: the 1,029th view of 65,536 passes it.
            XCTAssertEqual(name, "view1028")
            XCTAssertTrue(reason.contains("of \(elements) stored"), reason)
        }
    }

    /// The real checkpoint's pickle is far inside the work limit, and its weights need no inflating.
    func testTheGoldenCheckpointIsWellInsideTheLimits() throws {
        let file = try FileBytes(mapping: SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth"))
        let archive = try ZipArchive(file.whole)
        let pickleName = try XCTUnwrap(archive.names.first { $0.hasSuffix("/data.pkl") })
        var unpickler = Unpickler(try archive.contents(of: pickleName))
        _ = try unpickler.load()
        // The comment on Unpickler.workLimit quotes this figure (18,952) and the tensors per limit it implies.
        XCTAssertLessThan(unpickler.work, 20_000)
        XCTAssertLessThan(unpickler.work * 50_000 / 274, unpickler.workLimit)
        XCTAssertEqual(archive.budget.remaining, archive.budget.limit)
    }

    // MARK: - Messages

    /// Found by fuzz/run checkpoint_zip and checkpoint_legacy: names from the file (a global built by
    /// STACK_GLOBAL, an entry name) put newlines into the message, which the CLI promises is one line.
    func testNamesFromTheFileCannotBreakTheMessageIntoLines() throws {
        var pickle = PickleWriter()
        pickle.string("os\nimport")
        pickle.string("system\r\nError: fake")
        pickle.op(0x93)  // STACK_GLOBAL
        pickle.stop()
        var writer = ZipWriter()
        writer.entries = [("archive/data.pkl", pickle.bytes, .stored)]
        XCTAssertThrowsError(try StateDict.load(data: Data(writer.archive()))) { error in
            XCTAssertEqual(error as? CheckpointError, .forbiddenGlobal("os\nimport.system\r\nError: fake"))
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n") || text.contains("\r"), text)
            XCTAssertTrue(text.contains("os\\nimport.system\\r\\nError: fake"), text)
        }
        writer.entries = [("a\u{0}b\n/data.pkl", [0x80, 0x02, 0xFF], .deflated)]
        var bytes = writer.archive()
        bytes[bytes.count - 22 - 46 - 6 + 20] ^= 0xFF  // the central record's compressed size: now past the file
        XCTAssertThrowsError(try StateDict.load(data: Data(bytes))) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n") || text.contains("\u{0}"), text)
            XCTAssertTrue(text.contains("a\\u{0}b\\n/data.pkl"), text)
        }
    }
}
