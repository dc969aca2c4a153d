// One frame's result images at a time, for writers that stream a video's results instead of holding them all.
import Foundation

/// Per-frame builders of the images `ResultFiles.make` produces, with the same encodings, so a streaming
/// writer (the CLI's `--outputs`) renders exactly the files a job does, one frame in memory at a time.
public enum ResultFrames {
    /// `disparity/NNNN.png`: 16-bit gray, round(d × 256) clamped (KITTI).
    public static func disparityPNG(_ disparity: ArraySlice<Float>, width: Int, height: Int) throws -> Data {
        try PNG.encodeGray16(width: width, height: height, samples: disparity.map(ResultFiles.kittiSample))
    }

    /// `depth/NNNN.png`: 16-bit millimetres, focal × baseline / d, 0 where there is no depth.
    public static func depthPNG(_ disparity: ArraySlice<Float>, width: Int, height: Int,
                                focalPx: Double, baselineM: Double) throws -> Data {
        guard let factor = try ResultFiles.depthFactor(focalPx: focalPx, baselineM: baselineM) else {
            preconditionFailure("depthFactor returns a value for two numbers")
        }
        return try PNG.encodeGray16(width: width, height: height, samples: disparity.map {
            ResultFiles.depthMillimetres(disparity: $0, focalTimesBaseline: factor)
        })
    }

    /// `video/NNNN.png`'s picture: `left` beside its colour map (width 2W).
    public static func sideBySide(_ left: RGBImage, _ colored: RGBImage) -> RGBImage {
        ResultFiles.sideBySide(left, colored)
    }

    /// A frame name as a result file's stem (a trailing `.png` dropped), refusing names that would escape.
    public static func stem(_ name: String) throws -> String {
        try ResultFiles.stem(name)
    }
}
