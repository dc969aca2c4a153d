// The stereo video the worker tests that run the real network feed it: crops of golden set A, small enough
// for a few iterations to take seconds, real enough that the network's disparity means something.
import Foundation
import JobQueue
import Media
import TestSupport

/// Frame `index` of the `side` ("left" or "right") view of golden set A (a real rectified stereo pair
/// panning; its five frames repeat), cropped to its top-left `height` x `width` and encoded as PNG.
func goldenCrop(_ side: String, frame index: Int, height: Int = 32, width: Int = 64) throws -> Data {
    let file = SharedData.goldenSet("A").appendingPathComponent("\(side)/\(String(format: "%04d", index % 5)).png")
    let image = try PNG.decodeRGB(try Data(contentsOf: file))
    var pixels: [UInt8] = []
    for y in 0..<height { pixels += image.pixels[(y * image.width) * 3..<(y * image.width + width) * 3] }
    return try PNG.encodeRGB8(RGBImage(width: width, height: height, pixels: pixels))
}

/// `count` frames of `goldenCrop`s, named `0000.png`..., as a job's stored input.
func goldenVideo(frames count: Int, height: Int = 32, width: Int = 64) throws -> [InputFrame] {
    try (0..<count).map { index in
        InputFrame(index: index, name: String(format: "%04d.png", index),
                   left: try goldenCrop("left", frame: index, height: height, width: width),
                   right: try goldenCrop("right", frame: index, height: height, width: width))
    }
}
