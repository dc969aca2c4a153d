// A synthetic rectified stereo video with a known disparity: the demo clip that needs no data beside the project.

/// Random dots on two planes: a background at `backgroundDisparity` and a square, nearer the cameras, at
/// `squareDisparity` (pixels). Between frames the background scrolls left by `backgroundPan` pixels and the
/// square moves right by `squarePan`, so the video has motion as well as depth.
///
/// A scene point at column `x` of a left frame is at `x - d` in the right frame, `d` being its disparity:
/// `right(x - d, y) == left(x, y)` wherever that point is in the right frame and not hidden there behind the
/// square. Every pixel has its own colour from a hash of its plane and its position on that plane, so a shift
/// by any other amount matches almost nowhere.
public struct RandomDotStereo: Equatable, Sendable {
    public let frames: Int
    public let width: Int
    public let height: Int
    public let backgroundDisparity: Int
    public let squareDisparity: Int
    public let backgroundPan: Int
    public let squarePan: Int
    public let seed: UInt64

    /// What `dynstereo demo` writes: 5 frames of 128x64 (multiples of 32, so the network pads nothing).
    public static let demo = RandomDotStereo(frames: 5, width: 128, height: 64, backgroundDisparity: 4, squareDisparity: 12,
                                             backgroundPan: 2, squarePan: 4, seed: 0x6479_6E73_7465_7265)

    public init(frames: Int, width: Int, height: Int, backgroundDisparity: Int, squareDisparity: Int,
                backgroundPan: Int, squarePan: Int, seed: UInt64) {
        precondition(frames > 0 && width >= 16 && height >= 8, "a clip of \(frames) frames of \(width)x\(height) is too small")
        precondition(0 <= backgroundDisparity && backgroundDisparity <= squareDisparity, "the square must be the nearer plane")
        self.frames = frames
        self.width = width
        self.height = height
        self.backgroundDisparity = backgroundDisparity
        self.squareDisparity = squareDisparity
        self.backgroundPan = backgroundPan
        self.squarePan = squarePan
        self.seed = seed
        precondition(squareColumns(frame: frames - 1).upperBound <= width, "the square leaves the frame")
    }

    /// The square's rows: the middle half of the frame.
    public var squareRows: Range<Int> { (height / 4)..<(height - height / 4) }

    /// The square's columns in the left view of frame `t`: a quarter of the width, from 5/16 of it, moving right.
    public func squareColumns(frame t: Int) -> Range<Int> {
        let start = width * 5 / 16 + squarePan * t
        return start..<(start + width / 4)
    }

    /// The disparity of the left view's pixel (x, y) in frame `t`.
    public func disparity(x: Int, y: Int, frame t: Int) -> Int {
        squareRows.contains(y) && squareColumns(frame: t).contains(x) ? squareDisparity : backgroundDisparity
    }

    /// The left view of frame `t`.
    public func left(frame t: Int) -> RGBImage {
        render { x, y in
            let columns = squareColumns(frame: t)
            if squareRows.contains(y) && columns.contains(x) { return dot(.square, x - columns.lowerBound, y - squareRows.lowerBound) }
            return dot(.background, x + backgroundPan * t, y)
        }
    }

    /// The right view of frame `t`: each pixel shows the scene point at left-view column `x + d`. The square is
    /// in front, so where it covers the pixel it is what the right camera sees; elsewhere the background is,
    /// including the strip beside the square that the square hides from the left camera.
    public func right(frame t: Int) -> RGBImage {
        render { x, y in
            let columns = squareColumns(frame: t)
            if squareRows.contains(y) && columns.contains(x + squareDisparity) {
                return dot(.square, x + squareDisparity - columns.lowerBound, y - squareRows.lowerBound)
            }
            return dot(.background, x + backgroundDisparity + backgroundPan * t, y)
        }
    }

    enum Plane: UInt64 { case background = 1, square = 2 }

    /// The colour of the dot at (u, v) of a plane: three bytes of a SplitMix64 hash.
    func dot(_ plane: Plane, _ u: Int, _ v: Int) -> (UInt8, UInt8, UInt8) {
        var z = seed ^ (plane.rawValue &* 0x9E37_79B9_7F4A_7C15)
        z = z &+ UInt64(bitPattern: Int64(u)) &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(bitPattern: Int64(v)) &* 0x94D0_49BB_1331_11EB
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        return (UInt8(truncatingIfNeeded: z), UInt8(truncatingIfNeeded: z >> 8), UInt8(truncatingIfNeeded: z >> 16))
    }

    private func render(_ color: (Int, Int) -> (UInt8, UInt8, UInt8)) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let (r, g, b) = color(x, y)
                let at = (y * width + x) * 3
                pixels[at] = r
                pixels[at + 1] = g
                pixels[at + 2] = b
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
