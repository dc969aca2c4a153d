// Loading stereo sequences from folders and tar(.gz) archives, and every way two sides can disagree.
import Foundation
@testable import Media
import TestSupport
import XCTest

final class StereoSequenceTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("media-seq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func golden(_ set: String, _ side: String) -> URL {
        SharedData.goldenSet(set).appendingPathComponent(side)
    }

    private func goldenFrame(_ set: String, _ side: String, _ index: Int) throws -> Data {
        try Data(contentsOf: golden(set, side).appendingPathComponent(String(format: "%04d.png", index)))
    }

    /// Writes a tar (gzip-compressed when the name ends in .gz) into the scratch folder.
    private func makeTar(_ name: String, _ build: (TarWriter) throws -> Void) throws -> URL {
        let writer = TarWriter()
        try build(writer)
        try writer.finish()
        let url = scratch.appendingPathComponent(name)
        try (name.hasSuffix(".gz") ? GzipCompression.compress(writer.data) : writer.data).write(to: url)
        return url
    }

    private func makeDirectory(_ name: String, files: [String: Data]) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (file, data) in files { try data.write(to: url.appendingPathComponent(file)) }
        return url
    }

    func testGoldenFoldersLoad() throws {
        let sequence = try StereoSequence.load(left: golden("A", "left"), right: golden("A", "right"))
        XCTAssertEqual(sequence.names, ["0000", "0001", "0002", "0003", "0004"])
        XCTAssertEqual(sequence.count, 5)
        XCTAssertEqual(sequence.width, 256)
        XCTAssertEqual(sequence.height, 64)
        XCTAssertEqual(sequence.warnings, [])
        XCTAssertEqual(sequence.left[3], try PNG.decodeRGB(goldenFrame("A", "left", 3)))
        XCTAssertEqual(sequence.right[4], try PNG.decodeRGB(goldenFrame("A", "right", 4)))
        XCTAssertNotEqual(sequence.left[0], sequence.right[0])
    }

    func testTarAndTarGzLoadLikeTheFolderAndWarnAboutSkippedEntries() throws {
        let folder = try FrameSet.load(golden("A", "left"))
        for name in ["left.tar", "left.tar.gz"] {
            let url = try makeTar(name) { tar in
                try tar.addDirectory(path: "left")
                // Stored out of order: the reader sorts by name.
                for index in [3, 0, 4, 1, 2] {
                    try tar.addFile(path: String(format: "left/%04d.png", index), contents: try goldenFrame("A", "left", index))
                }
                try tar.addFile(path: "left/README.txt", contents: Data("notes".utf8))
                try tar.addFile(path: "left/._0000.png", contents: Data("apple double".utf8))
                try tar.addFile(path: "left/.hidden.png", contents: Data("hidden".utf8))
                try tar.addFile(path: "__MACOSX/left/0000.png", contents: Data("resource fork".utf8))
                try tar.write(path: "left/9999.png", typeFlag: UInt8(ascii: "2"), contents: Data(), linkTarget: "0000.png")
            }
            let set = try FrameSet.load(url)
            XCTAssertEqual(set.names, folder.names, name)
            XCTAssertEqual(set.images, folder.images, name)
            XCTAssertEqual(set.fileNames, ["0000.png", "0001.png", "0002.png", "0003.png", "0004.png"])
            for skipped in ["left in \(name): skipped, a directory entry", "README.txt", "._0000.png", ".hidden.png", "__MACOSX", "9999.png"] {
                XCTAssertTrue(set.warnings.contains { $0.contains(skipped) }, "\(name): no warning about \(skipped) in \(set.warnings)")
            }
            XCTAssertEqual(set.warnings.count, 6, "\(set.warnings)")
        }
    }

    func testFolderSkipsHiddenAndNonPNGFilesWithWarnings() throws {
        let dir = try makeDirectory("frames", files: ["0000.png": try goldenFrame("A", "left", 0),
                                                      "0001.png": try goldenFrame("A", "left", 1),
                                                      "._0000.png": Data("x".utf8), ".DS_Store": Data("x".utf8),
                                                      "notes.txt": Data("x".utf8)])
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let set = try FrameSet.load(dir)
        XCTAssertEqual(set.names, ["0000", "0001"])
        XCTAssertEqual(set.warnings.count, 4, "\(set.warnings)")
        for skipped in ["._0000.png", ".DS_Store", "notes.txt", "sub"] {
            XCTAssertTrue(set.warnings.contains { $0.contains(skipped) }, "no warning about \(skipped) in \(set.warnings)")
        }
    }

    func testFolderFollowsSymbolicLinksToFrames() throws {
        let dir = try makeDirectory("linked", files: [:])
        for index in 0..<2 {
            let name = String(format: "%04d.png", index)
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name),
                                                       withDestinationURL: golden("A", "left").appendingPathComponent(name))
        }
        let set = try FrameSet.load(dir)
        XCTAssertEqual(set.names, ["0000", "0001"])
        XCTAssertEqual(set.images[1], try PNG.decodeRGB(goldenFrame("A", "left", 1)))
        XCTAssertEqual(set.warnings, [])
    }

    func testNamesSortWithNumbersByValue() throws {
        let png = try PNG.encodeRGB8(RGBImage(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6]))
        let dir = try makeDirectory("numbers", files: ["frame10.png": png, "frame2.png": png, "frame1.png": png, "frame02b.png": png])
        XCTAssertEqual(try FrameSet.load(dir).names, ["frame1", "frame2", "frame02b", "frame10"])
        XCTAssertTrue(FrameSet.fileNameOrder("0009.png", "0010.png"))
        XCTAssertFalse(FrameSet.fileNameOrder("0010.png", "0009.png"))
    }

    // MARK: errors that name the culprit

    func testFrameCountMismatch() throws {
        let right = try makeTar("right.tar") { tar in
            for index in 0..<4 { try tar.addFile(path: String(format: "%04d.png", index), contents: try goldenFrame("A", "right", index)) }
        }
        XCTAssertThrowsError(try StereoSequence.load(left: golden("A", "left"), right: right)) { error in
            XCTAssertEqual(error as? MediaError, .frameCountMismatch(left: 5, right: 4))
            XCTAssertEqual("\(error)", "left has 5 frames, right has 4")
        }
    }

    func testFrameSizeMismatchBetweenSides() throws {
        let left = try makeTar("left.tar.gz") { tar in
            for index in 0..<3 { try tar.addFile(path: String(format: "%04d.png", index), contents: try goldenFrame("A", "left", index)) }
        }
        XCTAssertThrowsError(try StereoSequence.load(left: left, right: golden("B", "right"))) { error in
            XCTAssertEqual("\(error)", "frame 0000.png: left is 256x64, right is 260x70")
        }
    }

    func testFramesOfDifferentSizesWithinOneSide() throws {
        let dir = try makeDirectory("mixed", files: ["0000.png": try goldenFrame("A", "left", 0),
                                                     "0001.png": try goldenFrame("A", "left", 1),
                                                     "0002.png": try goldenFrame("B", "left", 2)])
        XCTAssertThrowsError(try FrameSet.load(dir)) { error in
            XCTAssertEqual("\(error)", "mixed: frame 0002.png is 260x70 but 0000.png is 256x64")
        }
    }

    func testNoFrames() throws {
        let empty = try makeDirectory("empty", files: [:])
        XCTAssertThrowsError(try FrameSet.load(empty)) { error in
            XCTAssertEqual(error as? MediaError, .noFrames(source: "empty"))
            XCTAssertEqual("\(error)", "no PNG or JPEG frames in empty")
        }
        let onlyNotes = try makeTar("notes.tar") { tar in try tar.addFile(path: "README.md", contents: Data("hi".utf8)) }
        XCTAssertThrowsError(try FrameSet.load(onlyNotes)) { error in
            XCTAssertEqual(error as? MediaError, .noFrames(source: "notes.tar"))
        }
        XCTAssertThrowsError(try FrameSet.load(scratch.appendingPathComponent("missing"))) { error in
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }

    func testUndecodableFrameIsNamed() throws {
        var badCRC = try goldenFrame("A", "left", 1)
        badCRC[29] ^= 0xFF
        let dir = try makeDirectory("broken", files: ["0000.png": try goldenFrame("A", "left", 0), "0001.png": badCRC])
        XCTAssertThrowsError(try FrameSet.load(dir)) { error in
            XCTAssertTrue("\(error)".hasPrefix("broken/0001.png: cannot decode PNG"), "\(error)")
            XCTAssertTrue("\(error)".contains("CRC"), "\(error)")
        }
        let tar = try makeTar("garbage.tar") { tar in
            try tar.addFile(path: "0000.png", contents: try goldenFrame("A", "left", 0))
            try tar.addFile(path: "0001.png", contents: Data("definitely not a png".utf8))
        }
        XCTAssertThrowsError(try FrameSet.load(tar)) { error in
            XCTAssertEqual("\(error)", "0001.png in garbage.tar: not a PNG file (bad signature)")
        }
        let truncated = try makeDirectory("cut", files: ["0000.png": try goldenFrame("A", "left", 0).prefix(500)])
        XCTAssertThrowsError(try FrameSet.load(truncated)) { error in
            XCTAssertTrue("\(error)".hasPrefix("cut/0000.png: "), "\(error)")
        }
    }

    func testEvilTarIsRefused() throws {
        for evil in ["../evil.png", "/abs.png"] {
            let url = try makeTar("evil.tar") { tar in
                try tar.addFile(path: "0000.png", contents: try goldenFrame("A", "left", 0))
                try tar.write(path: evil, typeFlag: UInt8(ascii: "0"), contents: try goldenFrame("A", "left", 1))
            }
            XCTAssertThrowsError(try FrameSet.load(url)) { error in
                XCTAssertEqual(error as? MediaError, .unsafeTarPath(archive: "evil.tar", entry: evil))
            }
        }
    }

    func testTruncatedTarIsNamed() throws {
        let writer = TarWriter()
        try writer.addFile(path: "0000.png", contents: try goldenFrame("A", "left", 0))
        try writer.addFile(path: "0001.png", contents: try goldenFrame("A", "left", 1))
        try writer.finish()
        let url = scratch.appendingPathComponent("cut.tar")
        try writer.data.prefix(writer.data.count - 3000).write(to: url)
        XCTAssertThrowsError(try FrameSet.load(url)) { error in
            XCTAssertTrue("\(error)".contains("cut.tar"), "\(error)")
            XCTAssertTrue("\(error)".contains("0001.png"), "\(error)")
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
    }

    func testDuplicateNamesInDifferentFolders() throws {
        let url = try makeTar("dup.tar") { tar in
            try tar.addFile(path: "a/0000.png", contents: try goldenFrame("A", "left", 0))
            try tar.addFile(path: "b/0000.png", contents: try goldenFrame("A", "left", 1))
        }
        XCTAssertThrowsError(try FrameSet.load(url)) { error in
            XCTAssertEqual(error as? MediaError, .duplicateFrame(source: "dup.tar", name: "0000"))
        }
    }

    func testLimits() throws {
        XCTAssertThrowsError(try FrameSet.load(golden("A", "left"), limits: SequenceLimits(maxFrames: 3))) { error in
            XCTAssertEqual(error as? MediaError, .tooManyFrames(source: "left", limit: 3))
        }
        XCTAssertThrowsError(try FrameSet.load(golden("A", "left"), limits: SequenceLimits(maxPixelsPerFrame: 10_000))) { error in
            XCTAssertEqual((error as? MediaError)?.underlying, .imageTooLarge(width: 256, height: 64, maxPixels: 10_000))
            XCTAssertTrue("\(error)".hasPrefix("left/0000.png: image is 256x64"), "\(error)")
        }
        XCTAssertThrowsError(try FrameSet.load(golden("A", "left"), limits: SequenceLimits(maxFileBytes: 100))) { error in
            guard case let .fileTooLarge(file, _, limit) = error as? MediaError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "left/0000.png")
            XCTAssertEqual(limit, 100)
        }
        let tar = try makeTar("big.tar") { tar in try tar.addFile(path: "0000.png", contents: try goldenFrame("A", "left", 0)) }
        XCTAssertThrowsError(try FrameSet.load(tar, limits: SequenceLimits(maxFileBytes: 100))) { error in
            guard case let .fileTooLarge(file, _, _) = error as? MediaError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "0000.png in big.tar")
        }
    }

    func testInMemoryArchive() throws {
        let writer = TarWriter()
        try writer.addFile(path: "0007.png", contents: try goldenFrame("A", "right", 2))
        try writer.finish()
        let set = try FrameSet.load(archive: writer.data, name: "upload.tar")
        XCTAssertEqual(set.names, ["0007"])
        XCTAssertEqual(set.source, "upload.tar")
        XCTAssertEqual(set.images.first, try PNG.decodeRGB(goldenFrame("A", "right", 2)))
    }
}
