// The result files of one frame at a time, for producers that never hold a whole video (the worker's
// windows and finishing step). The same encodings as `ResultFiles.make`.
import Foundation

/// Per-frame versions of `ResultFiles`' encodings. `disparity` is one frame, row-major H × W.
public enum FrameRendering {
    /// The NNNN of a frame's result files: its input name without `.png`, checked to name a file.
    public static func resultName(_ frameName: String) throws -> String {
        try ResultFiles.stem(frameName)
    }

    /// `disparity/NNNN.png`: 16-bit gray, round(d × 256) clamped (KITTI).
    public static func disparityPNG(_ disparity: ArraySlice<Float>, width: Int, height: Int) throws -> Data {
        try PNG.encodeGray16(width: width, height: height, samples: disparity.map(ResultFiles.kittiSample))
    }

    /// `depth/NNNN.png`, or nil when the job is not calibrated (neither focal length nor baseline given).
    public static func depthPNG(_ disparity: ArraySlice<Float>, width: Int, height: Int, focalPx: Double?, baselineM: Double?) throws -> Data? {
        guard let factor = try ResultFiles.depthFactor(focalPx: focalPx, baselineM: baselineM) else { return nil }
        return try PNG.encodeGray16(width: width, height: height,
                                    samples: disparity.map { ResultFiles.depthMillimetres(disparity: $0, focalTimesBaseline: factor) })
    }

    /// The frame's smallest and largest finite disparity, or (NaN, NaN) when it has none: what the video's
    /// colour scale is made of (`scale(frameRanges:)`).
    public static func range(_ disparity: ArraySlice<Float>) -> (min: Float, max: Float) {
        var low = Float.infinity, high = -Float.infinity
        for value in disparity where value.isFinite {
            low = Swift.min(low, value)
            high = Swift.max(high, value)
        }
        return low <= high ? (low, high) : (.nan, .nan)
    }

    /// The one colour scale of a video from its frames' ranges: the smallest minimum to the largest maximum
    /// (0...1 when no frame has a finite value). Known from per-frame figures, so a video's frames can be
    /// coloured one at a time in a second pass.
    public static func scale(lower: Float?, upper: Float?) -> ColorMap.Scale {
        guard let lower, let upper, lower <= upper else { return ColorMap.Scale(lower: 0, upper: 1) }
        return ColorMap.Scale(lower: lower, upper: upper)
    }

    /// `color/NNNN.png`, and `video/NNNN.png` (the left frame beside the colouring) when `left` is given.
    public static func colorAndVideo(_ disparity: ArraySlice<Float>, width: Int, height: Int, scale: ColorMap.Scale,
                                     left: RGBImage?) throws -> (color: Data, video: Data?) {
        let colored = ColorMap.colorize(disparity, width: width, height: height, scale: scale)
        let video = try left.map { image -> Data in
            guard image.width == width, image.height == height else {
                throw MediaError.invalidArgument("left image is \(image.width)x\(image.height), disparity is \(width)x\(height)")
            }
            return try PNG.encodeRGB8(ResultFiles.sideBySide(image, colored))
        }
        return (try PNG.encodeRGB8(colored), video)
    }
}
