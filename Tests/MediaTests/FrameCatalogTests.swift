// FrameCatalog: the same checks as FrameSet without keeping pixels, and frame bytes read back by position.
import Foundation
@testable import Media
import TestSupport
import XCTest

final class FrameCatalogTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("media-catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func goldenFrame(_ index: Int) throws -> Data {
        try Data(contentsOf: SharedData.goldenSet("A").appendingPathComponent("left")
            .appendingPathComponent(String(format: "%04d.png", index)))
    }

    /// The golden left frames stored out of name order, with entries the scan must skip in between.
    private func makeTar(_ name: String) throws -> URL {
        let writer = TarWriter()
        for index in [3, 0, 4, 1, 2] {
            try writer.addFile(path: String(format: "left/%04d.png", index), contents: try goldenFrame(index))
            try writer.addFile(path: "left/notes-\(index).txt", contents: Data(repeating: 7, count: 700 + index))
        }
        try writer.addFile(path: "__MACOSX/left/0000.png", contents: Data("resource fork".utf8))
        try writer.finish()
        let url = scratch.appendingPathComponent(name)
        try (name.hasSuffix(".gz") ? GzipCompression.compress(writer.data) : writer.data).write(to: url)
        return url
    }

    func testCatalogAgreesWithFrameSetAndReadsBackEachFrameExactly() throws {
        for name in ["left.tar", "left.tar.gz"] {
            let url = try makeTar(name)
            let set = try FrameSet.load(url)
            let catalog = try FrameCatalog.scan(url)
            XCTAssertEqual(catalog.fileNames, set.fileNames, name)
            XCTAssertEqual(catalog.names, ["0000", "0001", "0002", "0003", "0004"], name)
            XCTAssertEqual(catalog.width, 256, name)
            XCTAssertEqual(catalog.height, 64, name)
            XCTAssertEqual(catalog.warnings, set.warnings, name)
            var contents: FrameContents? = try catalog.openContents()
            // Backwards and repeated, to show that reads do not depend on the archive's order.
            for index in [4, 2, 0, 2, 1, 3] {
                XCTAssertEqual(try contents!.data(at: index), try goldenFrame(index), "\(name) frame \(index)")
            }
            contents = nil
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".") }
            XCTAssertEqual(leftovers, [], "\(name): the inflated copy is removed with its reader")
        }
    }

    func testCatalogRefusesWhatFrameSetRefuses() throws {
        let writer = TarWriter()
        try writer.addFile(path: "0000.png", contents: try goldenFrame(0))
        try writer.addFile(path: "0001.png", contents: Data("not a png".utf8))
        try writer.finish()
        let url = scratch.appendingPathComponent("bad.tar")
        try writer.data.write(to: url)
        XCTAssertThrowsError(try FrameCatalog.scan(url)) { error in
            XCTAssertTrue("\(error)".contains("0001.png"), "the bad frame is named: \(error)")
        }
        XCTAssertThrowsError(try FrameCatalog.scan(url, limits: SequenceLimits(maxFrames: 1))) { error in
            guard case .tooManyFrames? = (error as? MediaError)?.underlying else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try FrameCatalog.scan(scratch)) { error in
            XCTAssertTrue(error is MediaError, "a folder is refused with a media error: \(error)")
        }
    }

    func testArchiveCutAfterTheScanIsReportedNotCrashed() throws {
        let url = try makeTar("left.tar")
        let catalog = try FrameCatalog.scan(url)
        let contents = try catalog.openContents()
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 2048)
        try handle.close()
        XCTAssertThrowsError(try contents.data(at: 4)) { error in
            guard case .badTar? = error as? MediaError else { return XCTFail("expected badTar, got \(error)") }
        }
    }
}
