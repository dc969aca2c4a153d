// One frame holding both views: left | right side by side, or top over bottom.
import Media

/// How a single stereo file packs its two views. Raw values are the CLI/HTTP spellings.
public enum StereoLayout: String, CaseIterable, Sendable {
    /// Left half is the left view, right half the right view.
    case sideBySide = "sbs"
    /// Top half is the left view, bottom half the right view.
    case topBottom = "tb"

    /// The size of one view of a packed frame, or an error when the frame cannot split evenly.
    public func viewSize(width: Int, height: Int, source: String) throws -> (width: Int, height: Int) {
        switch self {
        case .sideBySide:
            guard width % 2 == 0 else {
                throw VideoError.badLayout("\(source): layout sbs needs an even width, the frames are \(width)x\(height)")
            }
            return (width / 2, height)
        case .topBottom:
            guard height % 2 == 0 else {
                throw VideoError.badLayout("\(source): layout tb needs an even height, the frames are \(width)x\(height)")
            }
            return (width, height / 2)
        }
    }

    /// Splits one packed frame (of even width for sbs, even height for tb) into its left and right views.
    public func split(_ frame: RGBImage) -> (left: RGBImage, right: RGBImage) {
        let (width, height) = (frame.width, frame.height)
        switch self {
        case .sideBySide:
            precondition(width % 2 == 0, "sbs split of an odd width \(width)")
            let half = width / 2, row = half * 3
            var left = [UInt8](), right = [UInt8]()
            left.reserveCapacity(row * height)
            right.reserveCapacity(row * height)
            for y in 0..<height {
                let start = y * width * 3
                left.append(contentsOf: frame.pixels[start..<start + row])
                right.append(contentsOf: frame.pixels[start + row..<start + 2 * row])
            }
            return (RGBImage(width: half, height: height, pixels: left),
                    RGBImage(width: half, height: height, pixels: right))
        case .topBottom:
            precondition(height % 2 == 0, "tb split of an odd height \(height)")
            let half = width * 3 * (height / 2)
            return (RGBImage(width: width, height: height / 2, pixels: Array(frame.pixels[0..<half])),
                    RGBImage(width: width, height: height / 2, pixels: Array(frame.pixels[half...])))
        }
    }
}
