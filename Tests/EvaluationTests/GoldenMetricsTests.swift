// Every form of the golden ground truth gives the reference's own numbers (../shared/golden/metrics).
@testable import Evaluation
import Foundation
@testable import Media
import TestSupport
import XCTest

final class GoldenMetricsTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratch("golden") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func evaluate(_ groundTruth: URL, prediction: URL = GoldenMetrics.prediction) throws -> EvaluationReport {
        try SequenceEvaluation.run(prediction: prediction, groundTruth: groundTruth, valid: GoldenMetrics.valid, crop: 0)
    }

    func testNumPyGroundTruthGivesTheReferenceMetrics() throws {
        let report = try evaluate(GoldenMetrics.groundTruthArray)
        XCTAssertEqual(report.groundTruthFormat, "NumPy array")
        XCTAssertEqual([report.frames, report.height, report.width], [5, 64, 256])
        try GoldenMetrics.assertMatchesExpected(report.metrics, "gt.npy")
    }

    func testPFMFolderGivesTheReferenceMetrics() throws {
        let report = try evaluate(GoldenMetrics.groundTruthPFM)
        XCTAssertEqual(report.groundTruthFormat, DisparityFileFormat.pfm.rawValue)
        try GoldenMetrics.assertMatchesExpected(report.metrics, "gt_pfm/")
    }

    func testKITTIFolderGivesTheReferenceMetrics() throws {
        let report = try evaluate(GoldenMetrics.groundTruthKITTI)
        XCTAssertEqual(report.groundTruthFormat, DisparityFileFormat.kitti.rawValue)
        try GoldenMetrics.assertMatchesExpected(report.metrics, "gt_kitti/")
    }

    /// The golden ground truth packed into Sintel PNGs here, then read back: the same values, the same metrics.
    func testSintelRoundTripGivesTheReferenceMetrics() throws {
        let frames = try TestFiles.frames(of: GoldenMetrics.groundTruthArray)
        let folder = scratch.appendingPathComponent("gt_sintel")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (t, frame) in frames.enumerated() {
            // gt.npy marks "no ground truth" with 0, which Sintel's format also reads as none.
            let data = try TestFiles.sintel(width: frame.width, height: frame.height, values: frame.values)
            try data.write(to: folder.appendingPathComponent(String(format: "frame_%04d.png", t + 1)))
            let decoded = try DisparityFile.decode(data, file: "frame \(t)")
            XCTAssertEqual(decoded.format, .sintel)
            for (index, value) in frame.values.enumerated() {
                if value > 0 {
                    XCTAssertEqual(decoded.frame.values[index], value, "frame \(t) pixel \(index)")
                } else {
                    XCTAssertTrue(decoded.frame.values[index].isNaN, "frame \(t) pixel \(index): 0 is no ground truth")
                }
            }
        }
        let report = try evaluate(folder)
        XCTAssertEqual(report.groundTruthFormat, DisparityFileFormat.sintel.rawValue)
        try GoldenMetrics.assertMatchesExpected(report.metrics, "Sintel PNGs")
    }

    /// Archives, with their entries out of name order and inside a folder: a plain tar (read in place) of the
    /// PFMs and a gzipped tar (copied out to a temporary folder) of the KITTI PNGs.
    func testArchivesOfFramesInAnyOrderGiveTheReferenceMetrics() throws {
        for (folder, compressed) in [(GoldenMetrics.groundTruthPFM, false), (GoldenMetrics.groundTruthKITTI, true)] {
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            let writer = TarWriter()
            try writer.addDirectory(path: "gt")
            try writer.addFile(path: "gt/README.txt", contents: Data("not a frame".utf8))
            for name in [names[3], names[0], names[4], names[2], names[1]] {
                try writer.addFile(path: "gt/\(name)", contents: Data(contentsOf: folder.appendingPathComponent(name)))
            }
            try writer.finish()
            let archive = scratch.appendingPathComponent(compressed ? "gt.tar.gz" : "gt.tar")
            try (compressed ? GzipCompression.compress(writer.data) : writer.data).write(to: archive)
            let temporary = FileManager.default.temporaryDirectory.path
            let before = Set(try FileManager.default.contentsOfDirectory(atPath: temporary))
            let report = try evaluate(archive)
            try GoldenMetrics.assertMatchesExpected(report.metrics, archive.lastPathComponent)
            XCTAssertEqual(report.warnings.count, 1, "\(report.warnings)")
            XCTAssertTrue(report.warnings[0].contains("README.txt"), report.warnings[0])
            // A gzipped archive's frames went to a temporary folder; it is gone once the evaluation is.
            let leftovers = Set(try FileManager.default.contentsOfDirectory(atPath: temporary)).subtracting(before)
                .filter { $0.hasPrefix("dynstereo-evaluate-") }
            XCTAssertEqual(leftovers, [], "temporary folders left behind")
        }
    }

    /// The prediction as `infer` leaves it (a folder) and as the service hands it out (result.tar).
    func testPredictionFromAnInferFolderOrAResultTar() throws {
        let prediction = try Data(contentsOf: GoldenMetrics.prediction)
        let folder = scratch.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("disparity"), withIntermediateDirectories: true)
        try prediction.write(to: folder.appendingPathComponent("disparity.npy"))
        try GoldenMetrics.assertMatchesExpected(try evaluate(GoldenMetrics.groundTruthPFM, prediction: folder).metrics,
                                                "infer folder")

        for compressed in [false, true] {
            let writer = TarWriter()
            try writer.addFile(path: "disparity/0000.png", contents: Data(contentsOf: GoldenMetrics.groundTruthKITTI.appendingPathComponent("0000.png")))
            try writer.addFile(path: "disparity.npy", contents: prediction)
            try writer.addFile(path: "color/0000.png", contents: Data([1, 2, 3]))
            try writer.finish()
            let archive = scratch.appendingPathComponent(compressed ? "result.tar.gz" : "result.tar")
            try (compressed ? GzipCompression.compress(writer.data) : writer.data).write(to: archive)
            try GoldenMetrics.assertMatchesExpected(try evaluate(GoldenMetrics.groundTruthKITTI, prediction: archive).metrics,
                                                    archive.lastPathComponent)
        }
    }

    /// Without --valid the PFM's own gaps (inf) are the mask, and here they are exactly the valid pixels.
    func testGroundTruthGapsAloneActAsTheMask() throws {
        let report = try SequenceEvaluation.run(prediction: GoldenMetrics.prediction, groundTruth: GoldenMetrics.groundTruthPFM,
                                                valid: nil, crop: 0)
        try GoldenMetrics.assertMatchesExpected(report.metrics, "gt_pfm/ without --valid")
    }

    /// gt.npy marks its gaps with 0, which a .npy means as a real disparity of 0: without the mask those pixels
    /// count, so the numbers must move (and the pixel count with them).
    func testZeroIsAValidDisparityInANumPyGroundTruth() throws {
        let masked = try evaluate(GoldenMetrics.groundTruthArray).metrics
        let unmasked = try SequenceEvaluation.run(prediction: GoldenMetrics.prediction, groundTruth: GoldenMetrics.groundTruthArray,
                                                  valid: nil, crop: 0).metrics
        XCTAssertEqual(unmasked.endpoint.nonZero, 5 * 64 * 256, "every pixel has ground truth and a non-zero error")
        XCTAssertGreaterThan(unmasked.endpoint.nonZero, masked.endpoint.nonZero)
        XCTAssertNotEqual(unmasked.endpoint.mean, masked.endpoint.mean)
    }

    /// --crop drops the border exactly as slicing [crop:-crop] would: the same numbers as the full frames with
    /// the border masked out.
    func testCropEqualsMaskingTheBorder() throws {
        let crop = 5
        let cropped = try SequenceEvaluation.run(prediction: GoldenMetrics.prediction, groundTruth: GoldenMetrics.groundTruthArray,
                                                 valid: GoldenMetrics.valid, crop: crop)
        XCTAssertEqual([cropped.metrics.width, cropped.metrics.height], [256 - 10, 64 - 10])

        let validFrames = try NPYFrames(bytes: FileBytes(url: GoldenMetrics.valid), name: "valid.npy")
        var border = [Bool]()
        for _ in 0..<5 {
            let mask = try validFrames.nextMask()
            border += mask.enumerated().map { index, value in
                let (y, x) = (index / 256, index % 256)
                return value && y >= crop && y < 64 - crop && x >= crop && x < 256 - crop
            }
        }
        let maskFile = scratch.appendingPathComponent("inner.npy")
        try TestFiles.npy(mask: border, shape: [5, 64, 256]).write(to: maskFile)
        let masked = try SequenceEvaluation.run(prediction: GoldenMetrics.prediction, groundTruth: GoldenMetrics.groundTruthArray,
                                                valid: maskFile, crop: 0)
        XCTAssertEqual(cropped.metrics.endpoint, masked.metrics.endpoint)
        XCTAssertEqual(cropped.metrics.temporal, masked.metrics.temporal)
        XCTAssertLessThan(cropped.metrics.endpoint.nonZero, try evaluate(GoldenMetrics.groundTruthArray).metrics.endpoint.nonZero)
    }
}
