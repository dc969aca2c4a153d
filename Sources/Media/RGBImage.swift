// The 8-bit RGB frame every reader produces and the network consumes.

/// An 8-bit RGB image, row-major, channels interleaved (R, G, B per pixel).
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` samples.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage \(width)x\(height) needs \(width * height * 3) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
