// The result files: names, KITTI disparity PNGs, the depth formula, the colour and video frames.
import Foundation
@testable import Media
import TensorKernels
import XCTest

final class ResultFilesTests: XCTestCase {
    // Two 2x3 frames. Expected KITTI samples are round(d * 256) clamped: written out by hand below.
    let values: [Float] = [0, 1, 1.5, 0.5, 300, .nan,
                           -2, 40.1, 0.001, 2, 3, 4]
    var disparity: Tensor { Tensor(shape: [2, 2, 3], data: values) }
    let left = [RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 10) }),
                RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8(250 - $0 * 10) })]

    private func file(_ files: [ResultFile], _ path: String) throws -> Data {
        try XCTUnwrap(files.first { $0.path == path }?.data, "no \(path) in \(files.map(\.path))")
    }

    func testPathsFollowTheFrameNames() throws {
        let files = try ResultFiles.make(disparity: disparity, frameNames: ["0007", "0009.png"], left: left,
                                         focalPx: 100, baselineM: 0.5)
        XCTAssertEqual(files.map(\.path), ["disparity.npy", "disparity/0007.png", "disparity/0009.png",
                                           "color/0007.png", "color/0009.png", "depth/0007.png", "depth/0009.png",
                                           "video/0007.png", "video/0009.png"])
        let withoutExtras = try ResultFiles.make(disparity: disparity, frameNames: ["a", "b"], left: [],
                                                 focalPx: nil, baselineM: nil)
        XCTAssertEqual(withoutExtras.map(\.path), ["disparity.npy", "disparity/a.png", "disparity/b.png", "color/a.png", "color/b.png"])
    }

    func testDisparityArrayAndKITTIPNGs() throws {
        let files = try ResultFiles.make(disparity: disparity, frameNames: ["0", "1"], left: [], focalPx: nil, baselineM: nil)
        let array = try NPY.decode(file(files, "disparity.npy"))
        XCTAssertEqual(array.shape, [2, 2, 3])
        XCTAssertEqual(array.data.map(\.bitPattern), values.map(\.bitPattern))

        let first = try PNG.decode(file(files, "disparity/0.png"))
        XCTAssertEqual(first.bitDepth, 16)
        XCTAssertEqual(first.layout, .gray)
        XCTAssertEqual(first.width, 3)
        XCTAssertEqual(first.height, 2)
        // 0, 256, 384, 128, 76800 -> 65535, NaN -> 0
        XCTAssertEqual(first.samples, [0, 256, 384, 128, 65535, 0])
        // -2 -> 0, 40.1 * 256 = 10265.6 -> 10266, 0.256 -> 0, 512, 768, 1024
        XCTAssertEqual(try PNG.decode(file(files, "disparity/1.png")).samples, [0, 10266, 0, 512, 768, 1024])
    }

    func testDepthFormula() throws {
        // focal 100 px x baseline 0.5 m = 50 px m -> depth_mm = 50000 / d.
        let files = try ResultFiles.make(disparity: disparity, frameNames: ["0", "1"], left: [], focalPx: 100, baselineM: 0.5)
        // d = 0 -> 0; 1 -> 50000; 1.5 -> 33333.3 -> 33333; 0.5 -> 100000 overflows -> 0; 300 -> 166.7 -> 167; NaN -> 0
        XCTAssertEqual(try PNG.decode(file(files, "depth/0.png")).samples, [0, 50000, 33333, 0, 167, 0])
        // -2 -> 0; 40.1 -> 1246.9 -> 1247; 0.001 -> 5e7 overflows -> 0; 2 -> 25000; 3 -> 16666.7 -> 16667; 4 -> 12500
        XCTAssertEqual(try PNG.decode(file(files, "depth/1.png")).samples, [0, 1247, 0, 25000, 16667, 12500])
        XCTAssertEqual(ResultFiles.depthMillimetres(disparity: 1e-7, focalTimesBaseline: 1e-6), 0)
        XCTAssertEqual(ResultFiles.depthMillimetres(disparity: .infinity, focalTimesBaseline: 1), 0)
    }

    func testColorFramesShareOneScaleAndFollowDisparity() throws {
        let files = try ResultFiles.make(disparity: disparity, frameNames: ["0", "1"], left: left, focalPx: nil, baselineM: nil)
        let frames = try [file(files, "color/0.png"), file(files, "color/1.png")].map { try PNG.decodeRGB($0) }
        var colors: [(UInt8, UInt8, UInt8)] = []
        for frame in frames {
            for pixel in 0..<6 {
                colors.append((frame.pixels[pixel * 3], frame.pixels[pixel * 3 + 1], frame.pixels[pixel * 3 + 2]))
            }
        }
        // One scale over both frames: the smallest finite value (-2, in frame 1) gets the first colour and the
        // largest (300, in frame 0) the last, whichever frame they are in.
        XCTAssertTrue(colors[6] == ColorMap.inferno(0))
        XCTAssertTrue(colors[4] == ColorMap.inferno(1))
        // Brighter means larger disparity, across frames.
        let finite = values.indices.filter { values[$0].isFinite }.sorted { values[$0] < values[$1] }
        for (a, b) in zip(finite, finite.dropFirst()) where values[a] < values[b] {
            XCTAssertLessThanOrEqual(ColorMapTests.luminance(colors[a]), ColorMapTests.luminance(colors[b]) + 0.5,
                                     "d \(values[a]) vs \(values[b])")
        }
        XCTAssertLessThan(ColorMapTests.luminance(colors[0]), ColorMapTests.luminance(colors[10]))  // 0 vs 3

        // The video frame: the left image, then the colour frame.
        let video = try PNG.decodeRGB(file(files, "video/1.png"))
        XCTAssertEqual(video.width, 6)
        XCTAssertEqual(video.height, 2)
        for y in 0..<2 {
            let row = Array(video.pixels[y * 18..<(y + 1) * 18])
            XCTAssertEqual(Array(row[0..<9]), Array(left[1].pixels[y * 9..<(y + 1) * 9]), "row \(y)")
            XCTAssertEqual(Array(row[9..<18]), Array(frames[1].pixels[y * 9..<(y + 1) * 9]), "row \(y)")
        }
    }

    func testBadArgumentsAreErrors() {
        let cases: [(String, () throws -> [ResultFile])] = [
            ("frame names", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0"], left: [], focalPx: nil, baselineM: nil) }),
            ("appears twice", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0", "0.png"], left: [], focalPx: nil, baselineM: nil) }),
            ("cannot name", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0", "../x"], left: [], focalPx: nil, baselineM: nil) }),
            ("left images", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0", "1"], left: [self.left[0]], focalPx: nil, baselineM: nil) }),
            ("is 2x1", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0", "1"],
                                              left: [self.left[0], RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 0, 0, 0])],
                                              focalPx: nil, baselineM: nil) }),
            ("both", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0", "1"], left: [], focalPx: 100, baselineM: nil) }),
            ("positive", { try ResultFiles.make(disparity: self.disparity, frameNames: ["0", "1"], left: [], focalPx: 100, baselineM: -1) }),
            ("[T, H, W]", { try ResultFiles.make(disparity: Tensor(shape: [6], data: Array(self.values[0..<6])), frameNames: ["0"], left: [], focalPx: nil, baselineM: nil) }),
        ]
        for (expected, make) in cases {
            XCTAssertThrowsError(try make(), expected) { error in
                XCTAssertTrue("\(error)".contains(expected), "expected '\(expected)' in: \(error)")
            }
        }
    }

    func testWriteCreatesTheFolders() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("media-results-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = try ResultFiles.make(disparity: disparity, frameNames: ["0007", "0008"], left: left, focalPx: 1, baselineM: 1)
        try ResultFiles.write(files, to: directory)
        for file in files {
            XCTAssertEqual(try Data(contentsOf: directory.appendingPathComponent(file.path)), file.data, file.path)
        }
        XCTAssertEqual(ResultFiles.contentType(of: "color/0007.png"), "image/png")
        XCTAssertEqual(ResultFiles.contentType(of: "disparity.npy"), "application/octet-stream")
    }
}
