// What the evaluation tests share: the golden metrics set, its expected values, and writers of test inputs.
import Evaluation
import Foundation
import Media
import TestSupport
import XCTest

/// `../shared/golden/metrics`: a prediction, its ground truth in three forms, the mask and the reference's output.
enum GoldenMetrics {
    static var folder: URL { SharedData.golden.appendingPathComponent("metrics") }
    static var prediction: URL { folder.appendingPathComponent("pred.npy") }
    static var groundTruthArray: URL { folder.appendingPathComponent("gt.npy") }
    static var groundTruthPFM: URL { folder.appendingPathComponent("gt_pfm") }
    static var groundTruthKITTI: URL { folder.appendingPathComponent("gt_kitti") }
    static var valid: URL { folder.appendingPathComponent("valid.npy") }

    /// `expected.json`'s metrics: `eval_endpoint_error_sequence(pred, gt, valid)` run by the reference in float32.
    static func expected() throws -> [String: Double] {
        let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let metrics = try XCTUnwrap(object["metrics"] as? [String: Double])
        return metrics
    }

    /// Checks every one of the ten metrics against expected.json: the means within 1e-5 relative (float32
    /// sums in another order), the bad-pixel shares within one pixel's worth (100 / the pixels scored), since a
    /// pixel a rounding step away from a threshold may fall either way.
    static func assertMatchesExpected(_ metrics: EndpointErrorMetrics, _ context: String,
                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try expected()
        let values = metrics.namedValues
        XCTAssertEqual(Set(values.map(\.name)), Set(expected.keys), context, file: file, line: line)
        for (name, value) in values {
            let reference = try XCTUnwrap(expected[name], name, file: file, line: line)
            let summary = name.hasPrefix("disp_temp_epe") ? metrics.temporal : metrics.endpoint
            if name.hasSuffix("_mean") {
                XCTAssertEqual(value, reference, accuracy: 1e-5 * abs(reference),
                               "\(context): \(name) is \(value), the reference's \(reference)", file: file, line: line)
            } else {
                let onePixel = 100 / Double(max(1, summary.nonZero))
                XCTAssertEqual(value, reference, accuracy: onePixel,
                               "\(context): \(name) is \(value), the reference's \(reference)", file: file, line: line)
            }
        }
    }
}

/// A fresh folder under the temporary directory, removed by the test's teardown.
func makeScratch(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("evaluation-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Writers of the inputs the tests make themselves.
enum TestFiles {
    /// A version 1.0 .npy of shape `shape` with `descr` '<f4', '<f8', '|b1' or '|u1' and the given raw bytes.
    static func npy(descr: String, shape: [Int], payload: Data) -> Data {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        data.append(contentsOf: [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(payload)
        return data
    }

    static func npy(float32 values: [Float], shape: [Int]) -> Data {
        npy(descr: "<f4", shape: shape, payload: values.withUnsafeBytes { Data($0) })
    }

    static func npy(mask values: [Bool], shape: [Int]) -> Data {
        npy(descr: "|b1", shape: shape, payload: Data(values.map { $0 ? 1 : 0 }))
    }

    /// A one-channel PFM, `values` [H, W] top row first, in either byte order.
    static func pfm(width: Int, height: Int, values: [Float], littleEndian: Bool = true, header: String? = nil) -> Data {
        var data = Data((header ?? "Pf\n\(width) \(height)\n\(littleEndian ? "-1.0" : "1.0")\n").utf8)
        for row in (0..<height).reversed() {
            for column in 0..<width {
                let bits = values[row * width + column].bitPattern
                let ordered = littleEndian ? bits.littleEndian : bits.bigEndian
                withUnsafeBytes(of: ordered) { data.append(contentsOf: $0) }
            }
        }
        return data
    }

    /// KITTI's 16-bit disparity PNG: round(d × 256), NaN (no ground truth) as 0.
    static func kitti(width: Int, height: Int, values: [Float]) throws -> Data {
        try PNG.encodeGray16(width: width, height: height,
                             samples: values.map { $0.isNaN ? 0 : UInt16((Double($0) * 256).rounded()) })
    }

    /// Sintel's disparity PNG: d = R × 4 + G / 2⁶ + B / 2¹⁴, NaN (no ground truth) as 0. `d` must be a multiple of
    /// 2⁻¹⁴ below 1024 to survive exactly, as the golden ground truth (multiples of 1/256) is.
    static func sintel(width: Int, height: Int, values: [Float]) throws -> Data {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for (index, value) in values.enumerated() where !value.isNaN {
            let scaled = Int((Double(value) * 16384).rounded())  // d in units of 2^-14
            precondition(scaled >= 0 && scaled < 1024 * 16384, "\(value) does not fit a Sintel PNG")
            pixels[3 * index] = UInt8(scaled >> 16)              // R: units of 4 = 2^16 units
            pixels[3 * index + 1] = UInt8((scaled >> 8) & 0xFF)  // G: units of 2^-6 = 2^8 units
            pixels[3 * index + 2] = UInt8(scaled & 0xFF)         // B: units of 2^-14
        }
        return try PNG.encodeRGB8(RGBImage(width: width, height: height, pixels: pixels))
    }

    /// Every frame of a ground truth, read through the module's own reader.
    static func frames(of url: URL) throws -> [DisparityFrame] {
        let truth = try GroundTruthFrames(url: url)
        var frames: [DisparityFrame] = []
        while let (_, frame) = try truth.next() { frames.append(frame) }
        return frames
    }
}
