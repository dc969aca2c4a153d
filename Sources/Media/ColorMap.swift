// Perceptual colouring of disparity: the inferno map and one scale shared by every frame of a video.
import TensorKernels

/// Maps disparity to 8-bit colour with matplotlib's inferno map (dark purple for far, pale yellow for near),
/// whose lightness rises monotonically, so brighter always means nearer.
public enum ColorMap {
    /// Inferno as data: the published 256-entry table sampled at entries 0, 16, ..., 240 and 255, as (position, r, g, b).
    /// Linear interpolation between these stays within a few 1/255 steps of the full table (the worst, about 6/255
    /// in blue, is near entry 200 where blue dips); the map's lightness still rises monotonically.
    static let infernoAnchors: [(t: Float, r: Float, g: Float, b: Float)] = [
        (0 / 255, 0.001462, 0.000466, 0.013866),
        (16 / 255, 0.042253, 0.028139, 0.141141),
        (32 / 255, 0.129285, 0.047293, 0.290788),
        (48 / 255, 0.238273, 0.036621, 0.396353),
        (64 / 255, 0.341500, 0.062325, 0.429425),
        (80 / 255, 0.441207, 0.099338, 0.431594),
        (96 / 255, 0.540920, 0.134729, 0.415123),
        (112 / 255, 0.640135, 0.171438, 0.381065),
        (128 / 255, 0.735683, 0.215906, 0.330245),
        (144 / 255, 0.822386, 0.275197, 0.266085),
        (160 / 255, 0.894305, 0.353399, 0.193584),
        (176 / 255, 0.946965, 0.449191, 0.115272),
        (192 / 255, 0.978422, 0.557937, 0.034931),
        (208 / 255, 0.987874, 0.675267, 0.065257),
        (224 / 255, 0.974638, 0.797692, 0.206332),
        (240 / 255, 0.947594, 0.917399, 0.410665),
        (255 / 255, 0.988362, 0.998364, 0.644924),
    ]

    /// The inferno colour at `t` in 0...1 (clamped; NaN counts as 0).
    public static func inferno(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let anchors = infernoAnchors
        let position = t.isNaN ? 0 : min(max(t, 0), 1)
        var upper = 1
        while upper < anchors.count - 1 && anchors[upper].t < position { upper += 1 }
        let a = anchors[upper - 1], b = anchors[upper]
        let w = (position - a.t) / (b.t - a.t)
        func byte(_ x: Float, _ y: Float) -> UInt8 { UInt8(((x + (y - x) * w) * 255).rounded()) }
        return (byte(a.r, b.r), byte(a.g, b.g), byte(a.b, b.b))
    }

    /// A 256-entry lookup table of `inferno`, for colouring whole frames.
    static let infernoTable: [(UInt8, UInt8, UInt8)] = (0..<256).map { inferno(Float($0) / 255) }

    /// The disparity range mapped onto the colour map: `lower` to the first colour, `upper` to the last.
    public struct Scale: Equatable, Sendable {
        public let lower: Float
        public let upper: Float

        public init(lower: Float, upper: Float) {
            self.lower = lower
            self.upper = upper
        }

        /// Where `value` falls, 0...1 (clamped). A degenerate range (a constant video) maps to the middle.
        public func position(_ value: Float) -> Float {
            guard upper > lower else { return 0.5 }
            guard !value.isNaN else { return 0 }
            return min(max((value - lower) / (upper - lower), 0), 1)
        }
    }

    /// One scale for a whole video: the `lowerPercentile` and `upperPercentile` of all finite values, so a few
    /// outliers do not wash out the rest and frames do not flicker. Over a million values it looks at an
    /// evenly strided sample of them, which moves a percentile by well under a colour step.
    public static func robustScale(_ values: [Float], lowerPercentile: Double = 1, upperPercentile: Double = 99) -> Scale {
        precondition(0 <= lowerPercentile && lowerPercentile <= upperPercentile && upperPercentile <= 100)
        let stride = max(1, values.count / 1_000_000)
        var sample: [Float] = []
        sample.reserveCapacity(values.count / stride + 1)
        for index in Swift.stride(from: 0, to: values.count, by: stride) where values[index].isFinite {
            sample.append(values[index])
        }
        guard !sample.isEmpty else { return Scale(lower: 0, upper: 1) }
        sample.sort()
        func percentile(_ p: Double) -> Float {
            sample[Int((p / 100 * Double(sample.count - 1)).rounded())]
        }
        return Scale(lower: percentile(lowerPercentile), upper: percentile(upperPercentile))
    }

    /// Colours one frame of `width * height` disparities (row-major) with inferno on `scale`.
    public static func colorize(_ disparity: ArraySlice<Float>, width: Int, height: Int, scale: Scale) -> RGBImage {
        precondition(disparity.count == width * height, "colorize: \(disparity.count) values for \(width)x\(height)")
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let table = infernoTable
        for (offset, value) in disparity.enumerated() {
            let (r, g, b) = table[Int((scale.position(value) * 255).rounded())]
            pixels[offset * 3] = r
            pixels[offset * 3 + 1] = g
            pixels[offset * 3 + 2] = b
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
