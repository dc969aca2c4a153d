// The per-frame formats: PFM in both byte orders, KITTI and Sintel PNGs, and files that are no disparity.
import Evaluation
import Foundation
@testable import Media
import XCTest

final class DisparityFileTests: XCTestCase {
    /// A 3x2 map with distinct rows, so a missed flip shows.
    let values: [Float] = [1.5, 2.25, 3, -4, 1e-3, 700]

    func testPFMInBothByteOrdersWithTheBottomRowFirst() throws {
        for littleEndian in [true, false] {
            let data = TestFiles.pfm(width: 3, height: 2, values: values, littleEndian: littleEndian)
            let map = try PFM.decode(data, file: "map.pfm")
            XCTAssertEqual([map.width, map.height], [3, 2])
            XCTAssertEqual(map.values, values, "little-endian: \(littleEndian)")
        }
        // The file's first row is the image's bottom one: the raw first value is values[3].
        let data = TestFiles.pfm(width: 3, height: 2, values: values)
        let first = data.suffix(24).withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
        XCTAssertEqual(first, values[3])
    }

    func testPFMHeaderWhiteSpaceAndScaleMagnitudeDoNotMatter() throws {
        let data = TestFiles.pfm(width: 3, height: 2, values: values, header: "Pf\r\n3  2\n-0.0039\n")
        XCTAssertEqual(try PFM.decode(data, file: "map.pfm").values, values)
    }

    func testPFMMissingValuesBecomeNoGroundTruth() throws {
        let withGaps: [Float] = [.infinity, 1, .nan, -.infinity, 0, 2]
        let decoded = try DisparityFile.decode(TestFiles.pfm(width: 3, height: 2, values: withGaps), file: "gaps.pfm")
        XCTAssertEqual(decoded.format, .pfm)
        XCTAssertEqual(decoded.frame.values.map { $0.isNaN }, [true, false, true, true, false, false])
        XCTAssertEqual(decoded.frame.values[4], 0, "0 is a disparity in a PFM")
    }

    func testBrokenPFMsAreRefusedWithTheReason() {
        let good = TestFiles.pfm(width: 3, height: 2, values: values)
        let cases: [(Data, String)] = [
            (TestFiles.pfm(width: 3, height: 2, values: values, header: "PF\n3 2\n-1.0\n"), "three-channel"),
            (good.dropLast(4), "needs 24 bytes"),
            (good + Data([0, 0, 0, 0]), "needs 24 bytes"),
            (TestFiles.pfm(width: 3, height: 2, values: values, header: "Pf\n3 2\n0\n"), "scale"),
            (TestFiles.pfm(width: 3, height: 2, values: values, header: "Pf\n3 -2\n-1\n"), "size"),
            (Data("Pf\n3 2".utf8), "truncated"),
        ]
        for (data, fragment) in cases {
            XCTAssertThrowsError(try DisparityFile.decode(data, file: "bad.pfm"), fragment) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("bad.pfm") && message.contains(fragment), message)
            }
        }
    }

    func testKITTIIsValueOver256WithZeroAsNoGroundTruth() throws {
        let data = try PNG.encodeGray16(width: 4, height: 1, samples: [0, 1, 256, 65535])
        let decoded = try DisparityFile.decode(data, file: "000000_10.png")
        XCTAssertEqual(decoded.format, .kitti)
        XCTAssertTrue(decoded.frame.values[0].isNaN)
        XCTAssertEqual(Array(decoded.frame.values.dropFirst()), [1.0 / 256, 1, 65535.0 / 256])
    }

    func testSintelIsRTimes4PlusGOver64PlusBOver16384() throws {
        let pixels: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 255, 255, 255, 12, 128, 64]
        let data = try PNG.encodeRGB8(RGBImage(width: 6, height: 1, pixels: pixels))
        let decoded = try DisparityFile.decode(data, file: "frame_0001.png")
        XCTAssertEqual(decoded.format, .sintel)
        XCTAssertTrue(decoded.frame.values[0].isNaN, "0 is no ground truth in Sintel's format")
        let expected: [Float] = [4, 1.0 / 64, 1.0 / 16384, 1020 + 255.0 / 64 + 255.0 / 16384, 48 + 2 + 64.0 / 16384]
        XCTAssertEqual(Array(decoded.frame.values.dropFirst()), expected)
        // And the test's own packer inverts it exactly.
        let repacked = try DisparityFile.decode(try TestFiles.sintel(width: 6, height: 1, values: decoded.frame.values), file: "again")
        XCTAssertEqual(repacked.frame.values.map { $0.isNaN ? -1 : $0 }, decoded.frame.values.map { $0.isNaN ? -1 : $0 })
    }

    /// PNGs of other kinds (an ordinary photo, a mask) are not read as disparities.
    func testOtherPNGKindsAreRefusedNamingTheirKind() throws {
        let kinds: [(PNG.RawImage, Int, String)] = [
            (PNG.RawImage(width: 2, height: 1, colorType: 0, bitDepth: 8), 2, "8-bit gray PNG"),
            (PNG.RawImage(width: 2, height: 1, colorType: 6, bitDepth: 8), 8, "8-bit RGBA PNG"),
            (PNG.RawImage(width: 2, height: 1, colorType: 2, bitDepth: 16), 12, "16-bit RGB PNG"),
            (PNG.RawImage(width: 2, height: 1, colorType: 3, bitDepth: 8, palette: [0, 0, 0, 9, 9, 9]), 2, "8-bit palette PNG"),
        ]
        for (image, rowBytes, fragment) in kinds {
            let rows = [UInt8](repeating: 1, count: rowBytes)
            let data = try rows.withUnsafeBytes { try PNG.encode(image, rows: $0, rowBytes: rowBytes) }
            XCTAssertThrowsError(try DisparityFile.decode(data, file: "photo.png")) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
            }
        }
    }

    func testFilesThatAreNoDisparityAreRefused() throws {
        let cases: [(Data, String)] = [
            (try PNG.encodeGray16(width: 2, height: 1, samples: [1, 2]).prefix(40), "cannot decode PNG"),
            (Data("hello, world".utf8), "neither a PFM nor a PNG"),
            (Data(), "neither a PFM nor a PNG"),
            (try PNG.encodeRGB8(RGBImage(width: 1, height: 1, pixels: [1, 2, 3])).prefix(8) + Data(count: 4), "cannot decode PNG"),
        ]
        for (data, fragment) in cases {
            XCTAssertThrowsError(try DisparityFile.decode(data, file: "x.png")) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("x.png is not a disparity"), "\(error)")
            }
        }
    }
}
