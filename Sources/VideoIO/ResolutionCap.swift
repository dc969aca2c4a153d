// `--max-size`: the network sees frames area-averaged down to a cap, and its disparity comes back at the
// input's resolution, upsampled bilinearly and rescaled to input pixels.
import Media
import TensorKernels

/// A cap on the longer side of the frames the network runs on. The cost of the network grows with the pixel
/// count, so halving the long side makes a frame about four times cheaper.
public struct ResolutionCap: Equatable, Sendable {
    /// The longest side, in pixels, the network may see.
    public let maxSize: Int

    public init(maxSize: Int) {
        precondition(maxSize > 0, "max size \(maxSize)")
        self.maxSize = maxSize
    }

    /// The size the network runs at for frames of `width` × `height`: unchanged when they fit, else scaled so
    /// the longer side is `maxSize` (the other side rounded, at least 1).
    public func networkSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let longer = max(width, height)
        guard longer > maxSize else { return (width, height) }
        let scale = Double(maxSize) / Double(longer)
        func side(_ n: Int) -> Int { n == longer ? maxSize : max(1, Int((Double(n) * scale).rounded())) }
        return (side(width), side(height))
    }

    /// `image` area-averaged to `width` × `height`, rounded back to 8 bits.
    public static func downscale(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        if image.width == width && image.height == height { return image }
        let (w, h) = (image.width, image.height)
        let planes = Tensor(shape: [1, 3, h, w]) { out in
            for p in 0..<(w * h) { for c in 0..<3 { out[c * w * h + p] = Float(image.pixels[p * 3 + c]) } }
        }
        let small = resizeArea(planes, height: height, width: width).data
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            for c in 0..<3 { pixels[p * 3 + c] = UInt8(min(max(small[c * width * height + p].rounded(), 0), 255)) }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Disparity [T, h, w] measured on network-size frames, brought to [T, height, width]: bilinear with
    /// half-pixel centres (the geometry `downscale` used), values multiplied by width / w since a disparity
    /// is a horizontal distance in pixels.
    public static func upsample(_ disparity: Tensor, width: Int, height: Int) -> Tensor {
        let (frames, h, w) = disparity.dims3
        if h == height && w == width { return disparity }
        let ratio = Float(width) / Float(w)
        return resizeBilinearHalfPixel(disparity.reshaped([frames, 1, h, w]), height: height, width: width)
            .map { $0 * ratio }.reshaped([frames, height, width])
    }
}
