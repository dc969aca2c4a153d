// Inputs that do not fit together or are no disparity: each a specific error naming the file at fault.
import Evaluation
import Foundation
import Media
import XCTest

final class BadInputTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratch("bad") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    private func folder(_ name: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private func file(_ name: String, _ data: Data) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url
    }

    /// Runs an evaluation that must fail and returns its error.
    private func failure(prediction: URL = GoldenMetrics.prediction, groundTruth: URL = GoldenMetrics.groundTruthArray,
                         valid: URL? = nil, crop: Int = 0, file: StaticString = #filePath, line: UInt = #line) -> Error? {
        var caught: Error?
        XCTAssertThrowsError(try SequenceEvaluation.run(prediction: prediction, groundTruth: groundTruth, valid: valid, crop: crop),
                             file: file, line: line) { caught = $0 }
        if let caught { XCTAssertFalse("\(caught)".contains("\n"), "one line: \(caught)", file: file, line: line) }
        return caught
    }

    func testFrameCountsMustAgree() throws {
        let four = try folder("four")
        for t in 0..<4 {
            let name = String(format: "%04d.pfm", t)
            try FileManager.default.copyItem(at: GoldenMetrics.groundTruthPFM.appendingPathComponent(name),
                                             to: four.appendingPathComponent(name))
        }
        XCTAssertEqual(failure(groundTruth: four) as? EvaluationError,
                       .frameCountMismatch(what: "the ground truth four", expected: 5, actual: 4))
        let shortMask = try file("mask.npy", TestFiles.npy(mask: [Bool](repeating: true, count: 2 * 64 * 256), shape: [2, 64, 256]))
        XCTAssertEqual(failure(valid: shortMask) as? EvaluationError,
                       .frameCountMismatch(what: "the mask mask.npy", expected: 5, actual: 2))
    }

    func testFrameSizesMustAgree() throws {
        let small = try folder("small")
        for t in 0..<5 {
            try TestFiles.kitti(width: 32, height: 16, values: [Float](repeating: 1, count: 32 * 16))
                .write(to: small.appendingPathComponent(String(format: "%06d_10.png", t)))
        }
        XCTAssertEqual(failure(groundTruth: small) as? EvaluationError,
                       .frameSizeMismatch(what: "the ground truth small", frame: "000000_10.png", width: 32, height: 16,
                                          expectedWidth: 256, expectedHeight: 64))
        let wideArray = try file("wide.npy", TestFiles.npy(float32: [Float](repeating: 1, count: 5 * 64 * 255), shape: [5, 64, 255]))
        XCTAssertEqual(failure(groundTruth: wideArray) as? EvaluationError,
                       .frameSizeMismatch(what: "the ground truth wide.npy", frame: "0", width: 255, height: 64,
                                          expectedWidth: 256, expectedHeight: 64))
        let mask = try file("m.npy", TestFiles.npy(mask: [Bool](repeating: true, count: 5 * 63 * 256), shape: [5, 63, 256]))
        XCTAssertEqual(failure(valid: mask) as? EvaluationError,
                       .frameSizeMismatch(what: "the mask m.npy", frame: "0", width: 256, height: 63,
                                          expectedWidth: 256, expectedHeight: 64))
    }

    func testNoFrames() throws {
        let empty = try folder("empty")
        XCTAssertEqual(failure(groundTruth: empty) as? EvaluationError, .noFrames(source: "empty"))
        let notes = try folder("notes")
        try Data("x".utf8).write(to: notes.appendingPathComponent("README.md"))
        XCTAssertEqual(failure(groundTruth: notes) as? EvaluationError, .noFrames(source: "notes"))
        let writer = TarWriter()
        try writer.addFile(path: "gt/readme.txt", contents: Data("x".utf8))
        try writer.finish()
        XCTAssertEqual(failure(groundTruth: try file("gt.tar", writer.data)) as? EvaluationError, .noFrames(source: "gt.tar"))
        let zeroFrames = try file("zero.npy", TestFiles.npy(float32: [], shape: [0, 64, 256]))
        XCTAssertEqual(failure(prediction: zeroFrames) as? EvaluationError, .noFrames(source: "zero.npy"))
    }

    func testFilesThatAreNoDisparity() throws {
        // A ground-truth folder whose frame is an ordinary 8-bit photo.
        let photos = try folder("photos")
        for t in 0..<5 {
            try PNG.encodeRGB8(RGBImage(width: 256, height: 64, pixels: [UInt8](repeating: 0, count: 256 * 64 * 3)))
                .write(to: photos.appendingPathComponent("\(t).png"))
        }
        try PNG.encodeGray16(width: 256, height: 64, samples: [UInt16](repeating: 0, count: 256 * 64))
            .write(to: photos.appendingPathComponent("9.png"))
        XCTAssertEqual(failure(groundTruth: photos) as? EvaluationError, .frameCountMismatch(what: "the ground truth photos", expected: 5, actual: 6))
        try FileManager.default.removeItem(at: photos.appendingPathComponent("0.png"))
        // Sintel-like RGB frames and then a KITTI one: the formats must not change mid-video.
        XCTAssertEqual(failure(groundTruth: photos) as? EvaluationError,
                       .mixedFormats(source: "photos", frame: "9.png", format: "KITTI 16-bit PNG", firstFrame: "1.png",
                                     firstFormat: "Sintel RGB PNG"))

        let text = try folder("text")
        for t in 0..<5 { try Data("no disparity".utf8).write(to: text.appendingPathComponent("\(t).pfm")) }
        XCTAssertEqual(failure(groundTruth: text) as? EvaluationError,
                       .notDisparity(file: "text/0.pfm", reason: "neither a PFM nor a PNG file"))

        let single = try file("0000.pfm", Data(contentsOf: GoldenMetrics.groundTruthPFM.appendingPathComponent("0000.pfm")))
        XCTAssertTrue("\(failure(groundTruth: single)!)".contains("one frame"))
        let garbage = try file("garbage.bin", Data((0..<2000).map { UInt8($0 % 251) }))
        XCTAssertTrue("\(failure(groundTruth: garbage)!)".contains("neither a .npy nor a"))
        XCTAssertTrue("\(failure(prediction: garbage)!)".contains("neither a .npy nor a"))

        // .npy files of the wrong kind.
        let integers = try file("int.npy", TestFiles.npy(descr: "<i8", shape: [5, 64, 256], payload: Data(count: 5 * 64 * 256 * 8)))
        XCTAssertTrue("\(failure(groundTruth: integers)!)".contains("element type '<i8' is not supported"))
        let flat = try file("flat.npy", TestFiles.npy(float32: [1, 2], shape: [2]))
        XCTAssertTrue("\(failure(prediction: flat)!)".contains("is not [T, H, W]"))
        XCTAssertTrue("\(failure(prediction: GoldenMetrics.valid)!)".contains("holds bool values"))
        let truncated = try file("cut.npy", try Data(contentsOf: GoldenMetrics.prediction).dropLast(100))
        XCTAssertTrue("\(failure(prediction: truncated)!)".contains("truncated: the data ends inside frame 4 of 5"))
        XCTAssertTrue("\(failure(valid: GoldenMetrics.groundTruthPFM)!)".contains("a validity mask is one"))
        let halves = try file("half.npy", TestFiles.npy(descr: "<f4", shape: [5, 64, 256],
                                                        payload: [Float](repeating: 0.5, count: 5 * 64 * 256).withUnsafeBytes { Data($0) }))
        XCTAssertEqual(failure(valid: halves) as? EvaluationError, .maskNotBoolean(file: "half.npy", value: 0.5))
    }

    func testPredictionContainersWithoutADisparityArray() throws {
        let out = try folder("out")
        XCTAssertEqual(failure(prediction: out) as? EvaluationError, .noPrediction(source: "out"))
        let writer = TarWriter()
        try writer.addFile(path: "disparity/0000.png", contents: Data([1]))
        try writer.finish()
        XCTAssertEqual(failure(prediction: try file("result.tar", writer.data)) as? EvaluationError, .noPrediction(source: "result.tar"))
        XCTAssertEqual(failure(prediction: scratch.appendingPathComponent("missing.npy")) as? EvaluationError,
                       .unreadable(path: scratch.appendingPathComponent("missing.npy").path, reason: "no such file or directory"))
    }

    func testDuplicateFrameNamesAndBadCrops() throws {
        let twice = try folder("twice")
        for name in ["0000.pfm", "0001.pfm", "0002.pfm", "0003.pfm"] {
            try FileManager.default.copyItem(at: GoldenMetrics.groundTruthPFM.appendingPathComponent(name), to: twice.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: GoldenMetrics.groundTruthKITTI.appendingPathComponent("0003.png"),
                                         to: twice.appendingPathComponent("0003.png"))
        XCTAssertEqual(failure(groundTruth: twice) as? EvaluationError, .duplicateFrame(source: "twice", name: "0003"))
        XCTAssertEqual(failure(crop: 32) as? EvaluationError, .badCrop(crop: 32, width: 256, height: 64))
        XCTAssertEqual(failure(crop: -2) as? EvaluationError, .badCrop(crop: -2, width: 256, height: 64))
    }
}
