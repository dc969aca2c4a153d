// The tar reader and writer: formats (ustar, GNU long names, pax), gzip, hostile and broken archives.
import Foundation
@testable import Media
import XCTest

final class TarTests: XCTestCase {
    /// Deterministic bytes that do not compress to nothing.
    static func bytes(_ count: Int, seed: UInt32 = 1) -> Data {
        var state = seed &* 2_654_435_761 | 1
        return Data((0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        })
    }

    private func entries(_ reader: TarReader) throws -> [(TarEntry, Data?)] {
        var out: [(TarEntry, Data?)] = []
        while let entry = try reader.next() {
            out.append((entry, entry.kind == .file ? try reader.readContents() : nil))
        }
        return out
    }

    func testUstarRoundTripWithSizesAroundBlockBoundaries() throws {
        let writer = TarWriter()
        let longPath = String(repeating: "d", count: 90) + "/" + String(repeating: "f", count: 60) + ".png"  // prefix + name
        let files: [(String, Data)] = [("empty.txt", Data()), ("one", Self.bytes(1)), ("a/b/511", Self.bytes(511)),
                                       ("512", Self.bytes(512)), ("513", Self.bytes(513)), (longPath, Self.bytes(70_000))]
        try writer.addDirectory(path: "a")
        for (path, contents) in files { try writer.addFile(path: path, contents: contents) }
        try writer.finish()
        XCTAssertEqual(writer.data.count % 512, 0)

        let read = try entries(TarReader(data: writer.data))
        XCTAssertEqual(read.count, files.count + 1)
        XCTAssertEqual(read[0].0, TarEntry(path: "a", kind: .directory, size: 0, linkTarget: ""))
        for ((entry, contents), (path, expected)) in zip(read.dropFirst(), files) {
            XCTAssertEqual(entry.path, path)
            XCTAssertEqual(entry.kind, .file)
            XCTAssertEqual(entry.size, expected.count, path)
            XCTAssertEqual(contents, expected, path)
        }
        // The 161-byte path fits ustar's prefix + name fields, so no extension header was needed.
        XCTAssertEqual(writer.data[156 + 512 * 11], UInt8(ascii: "0"))  // after 11 blocks of earlier entries
    }

    func testGNULongNames() throws {
        let name = String(repeating: "x", count: 180) + ".png"
        let writer = TarWriter(longNames: .gnu)
        try writer.addFile(path: name, contents: Self.bytes(10))
        try writer.finish()
        XCTAssertEqual(writer.data[156], UInt8(ascii: "L"), "first header should be a GNU long-name entry")
        let read = try entries(TarReader(data: writer.data))
        XCTAssertEqual(read.map(\.0.path), [name])
        XCTAssertEqual(read.first?.1, Self.bytes(10))
    }

    func testPaxPathsAndGlobalHeaders() throws {
        let name = String(repeating: "y", count: 150) + "/" + String(repeating: "z", count: 120) + ".png"
        let writer = TarWriter(longNames: .pax)
        // A global header such as `git archive` writes (a comment) must not disturb anything.
        try writer.writePax(records: ["comment": "0123456789abcdef"], global: true)
        try writer.addFile(path: name, contents: Self.bytes(3))
        // A pax path record overrides the short name in the header that follows it, and only that one.
        try writer.writePax(records: ["path": "renamed/frame.png", "mtime": "1.5"], global: false)
        try writer.write(path: "short.png", typeFlag: UInt8(ascii: "0"), contents: Self.bytes(4))
        try writer.addFile(path: "after.png", contents: Self.bytes(5))
        try writer.finish()
        XCTAssertEqual(writer.data[156], UInt8(ascii: "g"))
        XCTAssertEqual(writer.data[156 + 1024], UInt8(ascii: "x"))
        let read = try entries(TarReader(data: writer.data))
        XCTAssertEqual(read.map(\.0.path), [name, "renamed/frame.png", "after.png"])
        XCTAssertEqual(read.map(\.1), [Self.bytes(3), Self.bytes(4), Self.bytes(5)])
    }

    func testGzipFromMemoryAndFileStreamsAcrossChunks() throws {
        let writer = TarWriter()
        let big = Self.bytes(300_000, seed: 7)  // several 64 KiB chunks, compressed and not
        try writer.addFile(path: "big.bin", contents: big)
        try writer.addFile(path: "small.png", contents: Self.bytes(100))
        try writer.finish()
        let gz = try GzipCompression.compress(writer.data)
        XCTAssertEqual(Array(gz.prefix(2)), [0x1F, 0x8B])

        let fromMemory = try entries(TarReader(data: gz, name: "x.tar.gz"))
        XCTAssertEqual(fromMemory.map(\.0.path), ["big.bin", "small.png"])
        XCTAssertEqual(fromMemory[0].1, big)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tartest-\(UUID().uuidString).tgz")
        defer { try? FileManager.default.removeItem(at: url) }
        try gz.write(to: url)
        let reader = try TarReader(url: url)
        XCTAssertEqual(reader.archiveName, url.lastPathComponent)
        // Skip big.bin's contents without reading them: the reader must still land on the next header.
        XCTAssertEqual(try reader.next()?.path, "big.bin")
        XCTAssertEqual(try reader.next()?.path, "small.png")
        XCTAssertEqual(try reader.readContents(), Self.bytes(100))
        XCTAssertNil(try reader.next())
    }

    func testConcatenatedGzipMembers() throws {
        let writer = TarWriter()
        try writer.addFile(path: "a.png", contents: Self.bytes(2000))
        try writer.finish()
        let tar = writer.data
        let half = tar.count / 2
        let gz = try GzipCompression.compress(tar.prefix(half)) + GzipCompression.compress(tar.suffix(from: half))
        XCTAssertEqual(try entries(TarReader(data: gz)).map(\.1), [Self.bytes(2000)])
    }

    func testLinksAndDirectoriesAreReportedWithTheirKinds() throws {
        let writer = TarWriter()
        try writer.write(path: "link.png", typeFlag: UInt8(ascii: "2"), contents: Data(), linkTarget: "target.png")
        try writer.write(path: "hard.png", typeFlag: UInt8(ascii: "1"), contents: Data(), linkTarget: "target.png")
        try writer.write(path: "fifo", typeFlag: UInt8(ascii: "6"), contents: Data())
        try writer.write(path: "./", typeFlag: UInt8(ascii: "5"), contents: Data())
        try writer.finish()
        let read = try entries(TarReader(data: writer.data)).map(\.0)
        XCTAssertEqual(read.map(\.kind), [.symbolicLink, .hardLink, .other(UInt8(ascii: "6")), .directory])
        XCTAssertEqual(read[0].linkTarget, "target.png")
        XCTAssertEqual(read[3].path, ".")
    }

    // MARK: hostile and broken archives

    func testUnsafePathsAreRefusedNamingTheEntry() throws {
        for evil in ["../evil.png", "/abs.png", "frames/../../evil.png", "./a/../b.png"] {
            let writer = TarWriter()
            try writer.addFile(path: "fine.png", contents: Self.bytes(3))
            try writer.write(path: evil, typeFlag: UInt8(ascii: "0"), contents: Self.bytes(3))
            try writer.finish()
            let reader = try TarReader(data: writer.data, name: "evil.tar")
            XCTAssertEqual(try reader.next()?.path, "fine.png")
            XCTAssertThrowsError(try reader.next(), evil) { error in
                XCTAssertEqual(error as? MediaError, .unsafeTarPath(archive: "evil.tar", entry: evil))
                XCTAssertTrue("\(error)".contains(evil), "\(error)")
            }
        }
        // The same through a pax path record and a GNU long name.
        let pax = TarWriter()
        try pax.writePax(records: ["path": "../../etc/passwd"], global: false)
        try pax.write(path: "innocent.png", typeFlag: UInt8(ascii: "0"), contents: Data())
        try pax.finish()
        XCTAssertThrowsError(try TarReader(data: pax.data).next()) { error in
            XCTAssertTrue("\(error)".contains("../../etc/passwd"), "\(error)")
        }
        let gnu = TarWriter(longNames: .gnu)
        let longEvil = "/" + String(repeating: "a", count: 120) + ".png"
        try gnu.write(path: longEvil, typeFlag: UInt8(ascii: "0"), contents: Data())
        try gnu.finish()
        XCTAssertThrowsError(try TarReader(data: gnu.data).next()) { error in
            XCTAssertEqual(error as? MediaError, .unsafeTarPath(archive: "archive", entry: longEvil))
        }
    }

    func testWriterRefusesUnsafePaths() {
        let writer = TarWriter()
        for path in ["../x.png", "/x.png", "", "a/../../x"] {
            XCTAssertThrowsError(try writer.addFile(path: path, contents: Data()), path)
        }
    }

    func testTruncatedArchivesNameTheEntry() throws {
        let writer = TarWriter()
        try writer.addFile(path: "first.png", contents: Self.bytes(100))
        try writer.addFile(path: "second.png", contents: Self.bytes(5000))
        try writer.finish()
        let cut = writer.data.prefix(512 + 512 + 512 + 2000)  // inside second.png's contents
        // Reading the contents, and skipping them, both notice.
        let reader = try TarReader(data: cut, name: "cut.tar")
        _ = try reader.next()
        XCTAssertEqual(try reader.next()?.path, "second.png")
        XCTAssertThrowsError(try reader.readContents()) { error in
            XCTAssertTrue("\(error)".contains("second.png"), "\(error)")
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
        let skipping = try TarReader(data: cut, name: "cut.tar")
        _ = try skipping.next()
        _ = try skipping.next()
        XCTAssertThrowsError(try skipping.next()) { error in
            XCTAssertTrue("\(error)".contains("second.png"), "\(error)")
        }
        // Cut inside a header.
        XCTAssertThrowsError(try entries(TarReader(data: writer.data.prefix(1024 + 100), name: "cut.tar"))) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
            XCTAssertTrue("\(error)".contains("cut.tar"), "\(error)")
        }
        // Truncated gzip.
        let gz = try GzipCompression.compress(writer.data)
        XCTAssertThrowsError(try entries(TarReader(data: gz.prefix(gz.count - 30), name: "cut.tar.gz"))) { error in
            guard case .badGzip(archive: "cut.tar.gz", reason: let reason) = error as? MediaError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("truncated"), reason)
        }
    }

    func testGarbageIsNotATarArchive() throws {
        XCTAssertThrowsError(try TarReader(data: Self.bytes(2048), name: "noise.bin").next()) { error in
            XCTAssertTrue("\(error)".contains("not a tar archive"), "\(error)")
            XCTAssertTrue("\(error)".contains("noise.bin"), "\(error)")
        }
        XCTAssertThrowsError(try TarReader(data: Data("short".utf8), name: "tiny").next()) { error in
            XCTAssertTrue("\(error)".contains("not a tar archive"), "\(error)")
        }
        // A flipped byte in a later header is a checksum error at that header's offset.
        let writer = TarWriter()
        try writer.addFile(path: "a.png", contents: Self.bytes(10))
        try writer.addFile(path: "b.png", contents: Self.bytes(10))
        try writer.finish()
        var damaged = writer.data
        damaged[1024 + 3] ^= 0x40
        XCTAssertThrowsError(try entries(TarReader(data: damaged))) { error in
            XCTAssertTrue("\(error)".contains("checksum mismatch in the header at byte 1024"), "\(error)")
        }
        // Corrupt gzip data.
        var gz = try GzipCompression.compress(writer.data)
        gz[gz.count / 2] ^= 0xFF
        gz[gz.count / 2 + 1] ^= 0xFF
        XCTAssertThrowsError(try entries(TarReader(data: gz, name: "bad.tgz"))) { error in
            XCTAssertTrue("\(error)".contains("bad.tgz"), "\(error)")
        }
        XCTAssertThrowsError(try TarReader(data: Data("BZh91AY&SY".utf8) + Self.bytes(600), name: "x.tar.bz2")) { error in
            XCTAssertTrue("\(error)".contains("bzip2"), "\(error)")
        }
    }

    func testContentLimitIsCheckedBeforeReading() throws {
        let writer = TarWriter()
        try writer.addFile(path: "big.png", contents: Self.bytes(10_000))
        try writer.finish()
        let reader = try TarReader(data: writer.data, name: "t.tar")
        _ = try reader.next()
        XCTAssertThrowsError(try reader.readContents(maxBytes: 9_999)) { error in
            XCTAssertEqual(error as? MediaError, .fileTooLarge(file: "big.png in t.tar", size: 10_000, limit: 9_999))
        }
    }

    func testHugeAnnouncedSizesNeitherAllocateNorHang() throws {
        // A header claiming 1 TiB of content (base-256 size field) followed by nothing.
        let writer = TarWriter()
        try writer.writeRaw(writer.header(name: Array("huge.png".utf8), typeFlag: UInt8(ascii: "0"), size: 1 << 40, mode: 0o644),
                            contents: Data())
        let reader = try TarReader(data: writer.data, name: "huge.tar")
        XCTAssertEqual(try reader.next()?.size, 1 << 40)
        XCTAssertThrowsError(try reader.readContents()) { error in
            XCTAssertTrue("\(error)".contains("truncated: entry huge.png"), "\(error)")
        }
        // With an archive limit the same header is refused before anything is read.
        let limited = try TarReader(data: writer.data, name: "huge.tar")
        limited.maxArchiveBytes = 1 << 30
        XCTAssertThrowsError(try limited.next()) { error in
            XCTAssertTrue("\(error)".contains("past the limit of 1073741824 bytes"), "\(error)")
        }
    }

    func testFileHandleSinkWritesTheSameBytes() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tartest-\(UUID().uuidString).tar")
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: nil))
        let handle = try FileHandle(forWritingTo: url)
        let toFile = TarWriter(fileHandle: handle)
        let toMemory = TarWriter()
        for writer in [toFile, toMemory] {
            try writer.addFile(path: "disparity/0000.png", contents: Self.bytes(1234), modificationTime: 1_700_000_000)
            try writer.finish()
        }
        try handle.close()
        XCTAssertEqual(try Data(contentsOf: url), toMemory.data)
        XCTAssertTrue(toFile.data.isEmpty)
    }

    /// A tar path may hold any byte but NUL and slash: its newlines are shown escaped, so that an error stays
    /// one line (found by fuzzing the checkpoint reader's messages; the same holds here).
    func testEntryNamesCannotBreakTheMessageIntoLines() throws {
        let writer = TarWriter()
        try writer.addFile(path: "frame\nError: fake.png", contents: Data("not a png".utf8))
        try writer.finish()
        XCTAssertThrowsError(try FrameSet.load(archive: writer.data, name: "t.tar")) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertTrue(text.hasPrefix("frame\\nError: fake.png in t.tar: "), text)
        }
    }
}
