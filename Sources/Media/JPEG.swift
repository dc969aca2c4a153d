// JPEG decoding through libjpeg (via CJPEGShim, which keeps libjpeg's longjmp out of Swift frames), and the
// one entry point that decodes a frame file, PNG or JPEG, by its content.
import CJPEGShim
import Foundation

/// JPEG decoding, in memory, to 8-bit RGB.
public enum JPEG {
    /// Every JPEG starts with the SOI marker and the first marker's FF.
    static func hasSignature(_ data: Data) -> Bool {
        data.count >= 3 && data[data.startIndex] == 0xFF && data[data.startIndex + 1] == 0xD8 && data[data.startIndex + 2] == 0xFF
    }

    /// Decodes a baseline or progressive JPEG (gray or colour; CMYK refused) to RGB. Images with more than
    /// `maxPixels` pixels are refused after reading the header, before the pixel buffer is allocated; a
    /// truncated or corrupt stream is an error, not a picture with a grey tail.
    public static func decodeRGB(_ data: Data, maxPixels: Int = PNG.defaultMaxPixels) throws -> RGBImage {
        guard hasSignature(data) else { throw MediaError.notJPEG }
        return try data.withUnsafeBytes { raw -> RGBImage in
            let bytes = raw.bindMemory(to: UInt8.self)
            var info = cjpeg_info()
            var error = cjpeg_error()
            guard cjpeg_read_info(bytes.baseAddress, bytes.count, &info, &error) == 0 else {
                throw MediaError.jpegDecode(message(error))
            }
            let (width, height) = (Int(info.width), Int(info.height))
            guard width > 0, height > 0 else { throw MediaError.jpegDecode("the header declares \(width)x\(height)") }
            guard width * height <= maxPixels else {
                throw MediaError.imageTooLarge(width: width, height: height, maxPixels: maxPixels)
            }
            let count = width * height * 3
            let pixels = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                guard cjpeg_decode_rgb(bytes.baseAddress, bytes.count, buffer.baseAddress, count, &error) == 0 else {
                    throw MediaError.jpegDecode(message(error))
                }
                initialized = count
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }
    }

    private static func message(_ error: cjpeg_error) -> String {
        var copy = error
        return withUnsafeBytes(of: &copy.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

/// A stereo frame file: PNG or JPEG, told apart by content.
public enum FrameImage {
    /// The file extensions frames may have (compared without case).
    public static let extensions = [".png", ".jpg", ".jpeg"]

    public static func isFrameFileName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return extensions.contains { lower.hasSuffix($0) }
    }

    /// Decodes a PNG or a JPEG to 8-bit RGB.
    public static func decodeRGB(_ data: Data, maxPixels: Int = PNG.defaultMaxPixels) throws -> RGBImage {
        try decodeRGBMeasuringLength(data, maxPixels: maxPixels).image
    }

    /// `decodeRGB`, and the bytes that make up the image: a PNG through its IEND chunk, a JPEG whole.
    public static func decodeRGBMeasuringLength(_ data: Data, maxPixels: Int = PNG.defaultMaxPixels) throws -> (image: RGBImage, length: Int) {
        if JPEG.hasSignature(data) { return (try JPEG.decodeRGB(data, maxPixels: maxPixels), data.count) }
        return try PNG.decodeRGBMeasuringLength(data, maxPixels: maxPixels)
    }
}
