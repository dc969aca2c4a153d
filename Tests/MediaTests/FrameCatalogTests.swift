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
            var catalog: FrameCatalog? = try FrameCatalog.scan(url)
            XCTAssertEqual(catalog!.fileNames, set.fileNames, name)
            XCTAssertEqual(catalog!.names, ["0000", "0001", "0002", "0003", "0004"], name)
            XCTAssertEqual(catalog!.width, 256, name)
            XCTAssertEqual(catalog!.height, 64, name)
            XCTAssertEqual(catalog!.warnings, set.warnings, name)
            var contents: FrameContents? = try catalog!.openContents()
            catalog = nil
            // Backwards and repeated, to show that reads do not depend on the archive's order.
            for index in [4, 2, 0, 2, 1, 3] {
                XCTAssertEqual(try contents!.data(at: index), try goldenFrame(index), "\(name) frame \(index)")
            }
            contents = nil
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".") }
            XCTAssertEqual(leftovers, [], "\(name): the frame store is removed with the catalog and its reader")
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

    // MARK: - Amplification

    /// The upload, scaled down: valid 8x8 PNGs each followed by zeros to 1 MiB, gzipped. `pad` zeros
    /// after each PNG's IEND; returns the archive and the PNGs.
    private func paddedFrames(_ name: String, count: Int, pad: Int) throws -> (url: URL, pngs: [Data]) {
        let writer = TarWriter()
        var pngs: [Data] = []
        for index in 0..<count {
            let pixels = (0..<(8 * 8 * 3)).map { UInt8(truncatingIfNeeded: $0 * 7 + index) }
            let png = try PNG.encodeRGB8(RGBImage(width: 8, height: 8, pixels: pixels))
            pngs.append(png)
            try writer.addFile(path: String(format: "%04d.png", index), contents: png + Data(count: pad))
        }
        try writer.finish()
        let url = scratch.appendingPathComponent(name)
        try GzipCompression.compress(writer.data, level: 9).write(to: url)
        return (url, pngs)
    }

    /// Bytes after IEND are no part of the frame: the scan locates and stores each PNG without them.
    func testFramesAreStoredWithoutWhatFollowsTheirEnd() throws {
        let (url, pngs) = try paddedFrames("padded.tar.gz", count: 3, pad: 5000)
        let catalog = try FrameCatalog.scan(url)
        let contents = try catalog.openContents()
        for index in 0..<3 { XCTAssertEqual(try contents.data(at: index), pngs[index], "frame \(index)") }
        let store = try XCTUnwrap(catalog.store)
        let stored = try FileManager.default.attributesOfItem(atPath: store.url.path)[.size] as? Int
        XCTAssertEqual(stored, pngs.reduce(0) { $0 + $1.count }, "the store holds the PNGs and nothing else")
        // An uncompressed tar is read in place, the padding skipped all the same.
        let plain = scratch.appendingPathComponent("padded.tar")
        let writer = TarWriter()
        try writer.addFile(path: "0000.png", contents: pngs[0] + Data(count: 5000))
        try writer.finish()
        try writer.data.write(to: plain)
        XCTAssertEqual(try FrameCatalog.scan(plain).openContents().data(at: 0), pngs[0])
    }

    /// A tar.gz that inflates a thousandfold is refused once 16 MiB have come out, before its last frames
    /// (the ratio, not the size, refuses it: the default limit is 64 GiB).
    func testAbsurdCompressionRatioIsRefusedEarly() throws {
        let (url, _) = try paddedFrames("bomb.tar.gz", count: 24, pad: (1 << 20) - 200)
        XCTAssertLessThan(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? .max, 100_000)
        XCTAssertThrowsError(try FrameCatalog.scan(url)) { error in
            guard case let .compressionRatioTooHigh(archive, inflated, compressed, limit)? = error as? MediaError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(archive, "bomb.tar.gz")
            XCTAssertEqual(limit, 100)
            XCTAssertGreaterThan(inflated, 16 << 20)
            XCTAssertLessThan(inflated, (16 << 20) + (1 << 17), "stopped within a read of the floor")
            XCTAssertGreaterThanOrEqual(inflated / compressed, 100)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".") }, [],
                       "the refused scan's frame store is gone")
    }

    /// The inflated total is counted against the caller's limit as it comes out, ratio or not.
    func testInflatedBytesAreCountedAgainstTheLimitAsTheyComeOut() throws {
        let (url, _) = try paddedFrames("big.tar.gz", count: 40, pad: 100_000)
        var limits = SequenceLimits(maxArchiveBytes: 1 << 20)
        limits.maxCompressionRatio = .max
        XCTAssertThrowsError(try FrameCatalog.scan(url, limits: limits)) { error in
            XCTAssertEqual(error as? MediaError, .inflatedTooLarge(archive: "big.tar.gz", limit: 1 << 20))
        }
        // Within the limit the same archive is read whole, and says how far it inflated.
        let catalog = try FrameCatalog.scan(url, limits: SequenceLimits(maxArchiveBytes: 8 << 20))
        XCTAssertEqual(catalog.count, 40)
        XCTAssertGreaterThan(catalog.archiveBytes, 40 * 100_000)
    }

    /// A caller that has lost interest (the server: a client that went away) stops the scan between entries.
    func testScanStopsWhenTheCallerSaysSo() throws {
        let url = try makeTar("left.tar.gz")
        var asked = 0
        XCTAssertThrowsError(try FrameCatalog.scan(url, shouldStop: { asked += 1; return asked == 3 })) { error in
            XCTAssertEqual(error as? MediaError, .stopped(source: "left.tar.gz"))
        }
        XCTAssertEqual(asked, 3, "asked once per entry, and not again after stopping")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".") }, [])
    }
}
