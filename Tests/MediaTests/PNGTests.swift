// PNG decoding of every colour type and bit depth, the RGB conversion, the encoders, and broken files.
import Foundation
@testable import Media
import TestSupport
import XCTest

final class PNGTests: XCTestCase {
    // MARK: files libpng did not write

    func testGoldenFramesMatchAnIndependentDecoder() throws {
        // Pixel sums from a separate stdlib-only (Python zlib + filter reversal) decode of the same files:
        // `sum` is the plain sum, `weighted` is sum((i % 251 + 1) * byte[i]), which also catches misplaced bytes.
        let expected: [(file: String, sum: Int, weighted: Int, first: [UInt8], last: [UInt8])] = [
            ("0000.png", 4_611_895, 575_565_697, [78, 15, 15, 66, 14, 14], [196, 23, 23]),
            ("0004.png", 4_704_635, 598_160_571, [105, 74, 58, 102, 72, 55], [85, 63, 52]),
        ]
        for frame in expected {
            let url = SharedData.goldenSet("A").appendingPathComponent("left").appendingPathComponent(frame.file)
            let image = try PNG.decodeRGB(Data(contentsOf: url))
            XCTAssertEqual(image.width, 256, frame.file)
            XCTAssertEqual(image.height, 64, frame.file)
            XCTAssertEqual(image.pixels.reduce(0) { $0 + Int($1) }, frame.sum, frame.file)
            let weighted = image.pixels.enumerated().reduce(0) { $0 + ($1.offset % 251 + 1) * Int($1.element) }
            XCTAssertEqual(weighted, frame.weighted, frame.file)
            XCTAssertEqual(Array(image.pixels.prefix(6)), frame.first, frame.file)
            XCTAssertEqual(Array(image.pixels.suffix(3)), frame.last, frame.file)

            let decoded = try PNG.decode(Data(contentsOf: url))
            XCTAssertEqual(decoded.layout, .rgb)
            XCTAssertEqual(decoded.bitDepth, 8)
            XCTAssertEqual(decoded.samples.map { UInt8($0) }, image.pixels)
        }
    }

    func testHandBuilt16BitRGB() throws {
        let values: [UInt16] = [0x1234, 0xFFFF, 0x0000, 200 * 257, 32768, 385]
        var row: [UInt8] = [0]
        for value in values { row += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        let png = HandBuiltPNG.make(width: 2, height: 1, bitDepth: 16, colorType: 2, rows: row)
        let decoded = try PNG.decode(png)
        XCTAssertEqual(decoded.layout, .rgb)
        XCTAssertEqual(decoded.bitDepth, 16)
        XCTAssertEqual(decoded.samples, values)
        let rgb = try PNG.decodeRGB(png)
        // round(v / 257): 0x1234 = 4660 -> 18.13 -> 18; 32768 -> 127.5019 -> 128; 385 -> 1.498 -> 1.
        XCTAssertEqual(rgb.pixels, [18, 255, 0, 200, 128, 1])
    }

    func testHandBuiltPaletteWithTransparency() throws {
        // 2-bit palette, 5 pixels in one row: indices 0 1 2 1 0 packed big-end first -> 0b00011001, 0b00000000.
        let palette: [UInt8] = [10, 20, 30, 40, 50, 60, 70, 80, 90]
        let png = HandBuiltPNG.make(width: 5, height: 1, bitDepth: 2, colorType: 3, rows: [0, 0b0001_1001, 0b0000_0000],
                                    palette: palette, transparency: [0, 128])
        let decoded = try PNG.decode(png)
        XCTAssertEqual(decoded.layout, .rgba)
        XCTAssertEqual(decoded.bitDepth, 8)
        XCTAssertEqual(decoded.sourceColorType, 3)
        XCTAssertEqual(decoded.sourceBitDepth, 2)
        XCTAssertEqual(decoded.samples, [10, 20, 30, 0, 40, 50, 60, 128, 70, 80, 90, 255, 40, 50, 60, 128, 10, 20, 30, 0])
        XCTAssertEqual(try PNG.decodeRGB(png).pixels, [10, 20, 30, 40, 50, 60, 70, 80, 90, 40, 50, 60, 10, 20, 30])
    }

    func testHandBuilt1BitGrayAcrossAByteBoundary() throws {
        // 9 pixels: 1 0 1 1 0 0 1 0 | 1
        let png = HandBuiltPNG.make(width: 9, height: 1, bitDepth: 1, colorType: 0, rows: [0, 0b1011_0010, 0b1000_0000])
        let decoded = try PNG.decode(png)
        XCTAssertEqual(decoded.layout, .gray)
        XCTAssertEqual(decoded.samples, [255, 0, 255, 255, 0, 0, 255, 0, 255])
        XCTAssertEqual(try PNG.decodeRGB(png).pixels, [255, 0, 255, 255, 0, 0, 255, 0, 255].flatMap { [$0, $0, $0] })
    }

    // MARK: every format, written by libpng

    struct Format: CustomStringConvertible {
        var colorType: Int
        var bitDepth: Int
        var interlaced: Bool
        var transparent = false
        var description: String {
            "colour type \(colorType), \(bitDepth)-bit\(interlaced ? ", interlaced" : "")\(transparent ? ", tRNS" : "")"
        }
    }

    func testEveryColourTypeAndBitDepth() throws {
        let depths: [(Int, [Int])] = [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]
        var formats: [Format] = []
        for (colorType, bitDepths) in depths {
            for bitDepth in bitDepths {
                for interlaced in [false, true] {
                    formats.append(Format(colorType: colorType, bitDepth: bitDepth, interlaced: interlaced))
                }
            }
        }
        formats += [Format(colorType: 0, bitDepth: 4, interlaced: false, transparent: true),
                    Format(colorType: 0, bitDepth: 16, interlaced: true, transparent: true),
                    Format(colorType: 2, bitDepth: 8, interlaced: false, transparent: true),
                    Format(colorType: 3, bitDepth: 4, interlaced: true, transparent: true)]
        for format in formats {
            try checkRoundTrip(format, width: 7, height: 5)
        }
    }

    /// Writes a 7x5 image in `format` with libpng and checks what `decode` and `decodeRGB` return, computing the
    /// expected expansion (palette lookup, low-depth scaling, tRNS to alpha) here rather than trusting libpng.
    private func checkRoundTrip(_ format: Format, width: Int, height: Int) throws {
        let sourceChannels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][format.colorType]!
        let maxValue = (1 << format.bitDepth) - 1
        let paletteCount = min(1 << format.bitDepth, 6)
        let count = width * height * sourceChannels
        let values: [Int] = (0..<count).map { i in
            format.colorType == 3 ? (i * 5 + 1) % paletteCount : (i * 7919 + 13) % (maxValue + 1)
        }
        let palette: [UInt8] = (0..<paletteCount * 3).map { UInt8(($0 * 41 + 7) % 256) }
        let paletteAlpha: [UInt8] = format.transparent ? [0, 77, 200] : []
        let transparentValue = values[2]  // a value that does occur, so some pixels turn transparent
        let transparent: [UInt16]? = format.transparent && format.colorType != 3
            ? (format.colorType == 0 ? [UInt16(transparentValue)] : values[3..<6].map(UInt16.init))
            : nil

        // Pack rows as the PNG format stores them.
        var rows: [UInt8] = []
        let samplesPerRow = width * sourceChannels
        let rowBytes = (samplesPerRow * format.bitDepth + 7) / 8
        for y in 0..<height {
            let row = values[y * samplesPerRow..<(y + 1) * samplesPerRow]
            switch format.bitDepth {
            case 16:
                for value in row { withUnsafeBytes(of: UInt16(value)) { rows += $0 } }
            case 8:
                rows += row.map { UInt8($0) }
            default:
                var packed = [UInt8](repeating: 0, count: rowBytes)
                for (i, value) in row.enumerated() {
                    let bit = i * format.bitDepth
                    packed[bit / 8] |= UInt8(value << (8 - format.bitDepth - bit % 8))
                }
                rows += packed
            }
        }
        var raw = PNG.RawImage(width: width, height: height, colorType: format.colorType, bitDepth: format.bitDepth)
        raw.interlaced = format.interlaced
        if format.colorType == 3 {
            raw.palette = palette
            raw.paletteAlpha = paletteAlpha
        }
        raw.transparentColor = transparent
        let png = try rows.withUnsafeBytes { try PNG.encode(raw, rows: $0, rowBytes: rowBytes) }

        // What the decoder should produce.
        let outDepth = format.bitDepth == 16 ? 16 : 8
        let outMax = (1 << outDepth) - 1
        var expected: [UInt16] = []
        var layout: DecodedImage.Layout
        switch format.colorType {
        case 3:
            layout = format.transparent ? .rgba : .rgb
            for index in values {
                expected += palette[index * 3..<index * 3 + 3].map(UInt16.init)
                if format.transparent { expected.append(UInt16(index < paletteAlpha.count ? paletteAlpha[index] : 255)) }
            }
        case 0, 2:
            let channels = format.colorType == 0 ? 1 : 3
            layout = format.colorType == 0 ? (transparent != nil ? .grayAlpha : .gray) : (transparent != nil ? .rgba : .rgb)
            for pixel in 0..<width * height {
                let samples = Array(values[pixel * channels..<(pixel + 1) * channels])
                expected += samples.map { UInt16($0 * outMax / maxValue) }
                if let transparent {
                    expected.append(samples.map(UInt16.init) == transparent ? 0 : UInt16(outMax))
                }
            }
        default:
            layout = format.colorType == 4 ? .grayAlpha : .rgba
            expected = values.map(UInt16.init)
        }

        let decoded = try PNG.decode(png)
        XCTAssertEqual(decoded.width, width, "\(format)")
        XCTAssertEqual(decoded.height, height, "\(format)")
        XCTAssertEqual(decoded.layout, layout, "\(format)")
        XCTAssertEqual(decoded.bitDepth, outDepth, "\(format)")
        XCTAssertEqual(decoded.interlaced, format.interlaced, "\(format)")
        XCTAssertEqual(decoded.sourceColorType, format.colorType, "\(format)")
        XCTAssertEqual(decoded.samples, expected, "\(format)")

        let rgb = try PNG.decodeRGB(png)
        var expectedRGB: [UInt8] = []
        for pixel in 0..<width * height {
            let base = pixel * layout.channels
            let picks = layout.channels < 3 ? [base, base, base] : [base, base + 1, base + 2]
            for index in picks {
                let value = Double(expected[index])
                expectedRGB.append(UInt8(outDepth == 16 ? (value / 257).rounded() : value))
            }
        }
        XCTAssertEqual(rgb.pixels, expectedRGB, "decodeRGB, \(format)")
    }

    // MARK: encoders

    func testEncodeRGB8RoundTrips() throws {
        let width = 5, height = 3
        let pixels = (0..<width * height * 3).map { UInt8(($0 * 67 + 3) % 256) }
        let image = RGBImage(width: width, height: height, pixels: pixels)
        let png = try PNG.encodeRGB8(image)
        XCTAssertEqual(try PNG.decodeRGB(png), image)
        let decoded = try PNG.decode(png)
        XCTAssertEqual(decoded.sourceColorType, 2)
        XCTAssertEqual(decoded.sourceBitDepth, 8)
    }

    func testEncodeGray16RoundTrips() throws {
        let samples: [UInt16] = [0, 1, 255, 256, 65535, 32768, 12345, 54321, 7]
        let png = try PNG.encodeGray16(width: 3, height: 3, samples: samples)
        let decoded = try PNG.decode(png)
        XCTAssertEqual(decoded.layout, .gray)
        XCTAssertEqual(decoded.bitDepth, 16)
        XCTAssertEqual(decoded.sourceColorType, 0)
        XCTAssertEqual(decoded.samples, samples)
    }

    func testEncodeGray16RefusesAWrongSampleCount() {
        XCTAssertThrowsError(try PNG.encodeGray16(width: 3, height: 2, samples: [1, 2, 3])) { error in
            XCTAssertTrue("\(error)".contains("3x2"), "\(error)")
        }
    }

    // MARK: broken input

    private func goldenFrameData() throws -> Data {
        try Data(contentsOf: SharedData.goldenSet("A").appendingPathComponent("left/0000.png"))
    }

    func testGarbageIsNotAPNG() {
        XCTAssertThrowsError(try PNG.decodeRGB(Data("hello, this is not an image".utf8))) { error in
            XCTAssertEqual(error as? MediaError, .notPNG)
        }
        XCTAssertThrowsError(try PNG.decode(Data())) { error in
            XCTAssertEqual(error as? MediaError, .notPNG)
        }
    }

    func testTruncatedPNGIsAnError() throws {
        let data = try goldenFrameData()
        for length in [8, 20, 40, data.count / 2, data.count - 5] {
            XCTAssertThrowsError(try PNG.decodeRGB(data.prefix(length)), "cut at \(length)") { error in
                guard case .pngDecode = error as? MediaError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try PNG.decodeRGB(data.prefix(data.count / 2))) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
    }

    func testBadCRCIsAnErrorNamingTheChunk() throws {
        var data = try goldenFrameData()
        // IHDR's CRC sits at bytes 29...32 (8 signature + 4 length + 4 type + 13 body).
        data[29] ^= 0xFF
        XCTAssertThrowsError(try PNG.decodeRGB(data)) { error in
            XCTAssertTrue("\(error)".contains("IHDR"), "\(error)")
            XCTAssertTrue("\(error)".contains("CRC"), "\(error)")
        }
        let rows: [UInt8] = [0, 1, 2, 3]
        var idat = HandBuiltPNG.make(width: 1, height: 1, bitDepth: 8, colorType: 2, rows: rows)
        // The IDAT CRC is the 4 bytes before IEND's 12.
        idat[idat.count - 13] ^= 0x01
        XCTAssertThrowsError(try PNG.decodeRGB(idat)) { error in
            XCTAssertTrue("\(error)".contains("IDAT"), "\(error)")
            XCTAssertTrue("\(error)".contains("CRC"), "\(error)")
        }
    }

    func testPixelLimitRefusesBeforeAllocating() throws {
        XCTAssertThrowsError(try PNG.decodeRGB(try goldenFrameData(), maxPixels: 256 * 64 - 1)) { error in
            XCTAssertEqual(error as? MediaError, .imageTooLarge(width: 256, height: 64, maxPixels: 256 * 64 - 1))
        }
        XCTAssertNoThrow(try PNG.decodeRGB(try goldenFrameData(), maxPixels: 256 * 64))
        // A header announcing 10^10 pixels with almost no data: refused by the limit, never allocated.
        let bomb = HandBuiltPNG.make(width: 100_000, height: 100_000, bitDepth: 8, colorType: 2, rows: [0])
        XCTAssertThrowsError(try PNG.decode(bomb)) { error in
            XCTAssertEqual(error as? MediaError, .imageTooLarge(width: 100_000, height: 100_000, maxPixels: PNG.defaultMaxPixels))
        }
    }
}
