// One ground-truth disparity frame in any of the per-frame formats, recognised from its bytes.
import Foundation
import Media

/// The per-frame disparity formats, each with its own marker for "no ground truth here".
public enum DisparityFileFormat: String, Equatable, Sendable {
    /// Middlebury and SceneFlow: float32 PFM; non-finite values (Middlebury writes inf) mean none.
    case pfm = "PFM"
    /// KITTI: 16-bit gray PNG holding round(d × 256); 0 means none.
    case kitti = "KITTI 16-bit PNG"
    /// MPI Sintel: 8-bit RGB PNG holding d = R × 4 + G / 2⁶ + B / 2¹⁴; 0 means none (the reference's Sintel
    /// reader keeps only d > 0).
    case sintel = "Sintel RGB PNG"
}

/// A decoded ground-truth frame: [H, W] row-major disparities, NaN where there is no ground truth.
public struct DisparityFrame: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let values: [Float]
}

/// Decoding of the per-frame formats.
public enum DisparityFile {
    /// Recognises `data` (PFM by its header; PNG by its signature, then KITTI or Sintel by its colour type and
    /// bit depth) and decodes it. `file` names it in errors.
    public static func decode(_ data: Data, file: String) throws -> (format: DisparityFileFormat, frame: DisparityFrame) {
        if PFM.looksLikePFM(data) {
            let map = try PFM.decode(data, file: file)
            let values = map.values.map { $0.isFinite ? $0 : .nan }
            return (.pfm, DisparityFrame(width: map.width, height: map.height, values: values))
        }
        let image: DecodedImage
        do {
            image = try PNG.decode(data)
        } catch MediaError.notPNG {
            throw EvaluationError.notDisparity(file: file, reason: "neither a PFM nor a PNG file")
        } catch let error as MediaError {
            throw EvaluationError.notDisparity(file: file, reason: error.description)
        }
        let pixels = image.width * image.height
        switch (image.sourceColorType, image.bitDepth) {
        case (0, 16):
            let values = image.samples.map { $0 == 0 ? Float.nan : Float($0) / 256 }
            return (.kitti, DisparityFrame(width: image.width, height: image.height, values: values))
        case (2, 8):
            var values = [Float](repeating: .nan, count: pixels)
            image.samples.withUnsafeBufferPointer { rgb in
                for index in 0..<pixels {
                    // 3 * index + 2 < 3 * pixels = rgb.count: RGB samples interleaved.
                    let packed = Float(rgb[3 * index]) * 4 + Float(rgb[3 * index + 1]) / 64 + Float(rgb[3 * index + 2]) / 16384
                    // Exact in float32: at most 10 integer bits and 14 fraction bits, 24 significant bits in all.
                    if packed > 0 { values[index] = packed }
                }
            }
            return (.sintel, DisparityFrame(width: image.width, height: image.height, values: values))
        default:
            let kinds = [0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"]
            let kind = kinds[image.sourceColorType] ?? "colour type \(image.sourceColorType)"
            throw EvaluationError.notDisparity(
                file: file, reason: "a \(image.sourceBitDepth)-bit \(kind) PNG; disparity PNGs are KITTI's 16-bit gray or Sintel's 8-bit RGB")
        }
    }
}
