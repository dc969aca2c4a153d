// JPEG frames: decoded through libjpeg, accepted wherever PNG frames are (folders, tars), refused clearly when broken.
import Foundation
@testable import Media
import TestSupport
import XCTest

final class JPEGTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("media-jpeg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Golden set A's frame `index` (left), as PNG bytes and as a JPEG ffmpeg wrote from it at its best quality
    /// with full-resolution chroma.
    private func goldenJPEG(_ index: Int) throws -> (png: Data, jpeg: Data) {
        let source = SharedData.goldenSet("A").appendingPathComponent("left/\(String(format: "%04d", index)).png")
        let target = scratch.appendingPathComponent("\(index).jpg")
        try VideoFixtures.ffmpeg(["-i", source.path, "-q:v", "1", "-pix_fmt", "yuvj444p", target.path])
        return (try Data(contentsOf: source), try Data(contentsOf: target))
    }

    func testAJPEGDecodesToThePictureItWasMadeFrom() throws {
        let (png, jpeg) = try goldenJPEG(0)
        let original = try PNG.decodeRGB(png)
        let decoded = try JPEG.decodeRGB(jpeg)
        XCTAssertEqual(decoded.width, original.width)
        XCTAssertEqual(decoded.height, original.height)
        // Quality 1 (ffmpeg's best) at 4:4:4 loses quantisation and the RGB -> YCbCr -> RGB rounding: measured
        // 19 levels at worst and 2.3 on average on this frame; the bounds leave room for another libjpeg build's
        // IDCT, and a decoder that got the colours or the geometry wrong would be tens of levels off everywhere.
        let differences = zip(decoded.pixels, original.pixels).map { abs(Int($0) - Int($1)) }
        let largest = differences.max() ?? 0, mean = Double(differences.reduce(0, +)) / Double(differences.count)
        XCTAssertLessThanOrEqual(largest, 32, "largest sample difference \(largest)")
        XCTAssertLessThan(mean, 4, "mean sample difference \(mean)")
        XCTAssertEqual(try FrameImage.decodeRGB(jpeg), decoded, "frames are told apart by content")
        XCTAssertEqual(try FrameImage.decodeRGB(png), original)
    }

    func testBrokenOrOversizedJPEGsAreClearErrors() throws {
        let (_, jpeg) = try goldenJPEG(1)
        XCTAssertThrowsError(try JPEG.decodeRGB(jpeg.prefix(jpeg.count / 2))) { error in
            guard case .jpegDecode = error as? MediaError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".hasPrefix("cannot decode JPEG: "), "\(error)")
        }
        XCTAssertThrowsError(try JPEG.decodeRGB(Data([0xFF, 0xD8, 0xFF]))) { error in
            guard case .jpegDecode = error as? MediaError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try JPEG.decodeRGB(Data("hello".utf8))) { XCTAssertEqual($0 as? MediaError, .notJPEG) }
        XCTAssertThrowsError(try JPEG.decodeRGB(jpeg, maxPixels: 100)) { error in
            guard case .imageTooLarge(256, 64, 100) = error as? MediaError else { return XCTFail("\(error)") }
        }
    }

    func testFoldersAndTarsOfJPEGFramesLoadLikePNGOnes() throws {
        let folder = scratch.appendingPathComponent("frames")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var expected: [RGBImage] = []
        let writer = TarWriter()
        for index in 0..<3 {
            let (_, jpeg) = try goldenJPEG(index)
            try jpeg.write(to: folder.appendingPathComponent(String(format: "%04d.jpg", index)))
            try writer.addFile(path: String(format: "%04d.jpeg", index), contents: jpeg)
            expected.append(try JPEG.decodeRGB(jpeg))
        }
        try writer.finish()
        let tar = scratch.appendingPathComponent("frames.tar")
        try writer.data.write(to: tar)

        let fromFolder = try FrameSet.load(folder)
        XCTAssertEqual(fromFolder.names, ["0000", "0001", "0002"])
        XCTAssertEqual(fromFolder.images, expected)
        let catalog = try FrameCatalog.scan(tar)
        XCTAssertEqual(catalog.names, ["0000", "0001", "0002"])
        XCTAssertEqual(catalog.width, 256)
        XCTAssertEqual(catalog.height, 64)
        let contents = try catalog.openContents()
        XCTAssertEqual(try FrameImage.decodeRGB(try contents.data(at: 2)), expected[2], "a frame's bytes read back whole")
    }
}
