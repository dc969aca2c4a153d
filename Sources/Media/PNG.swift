// PNG in and out of memory through libpng (via CPNGShim, which keeps libpng's longjmp out of Swift frames).
import CPNGShim
import Foundation

/// A decoded PNG in its own channel layout and bit depth: palettes and tRNS are expanded to RGB(A), gray below
/// 8 bits is widened to 8, so every image is 8- or 16-bit gray, gray+alpha, RGB or RGBA.
public struct DecodedImage: Equatable, Sendable {
    /// The channels of each pixel, in sample order.
    public enum Layout: Int, Sendable {
        case gray = 1, grayAlpha = 2, rgb = 3, rgba = 4

        public var channels: Int { rawValue }
    }

    public let width: Int
    public let height: Int
    public let layout: Layout
    /// 8 or 16: the largest sample value is `(1 << bitDepth) - 1`.
    public let bitDepth: Int
    /// `width * height * layout.channels` samples, row-major, channels interleaved.
    public let samples: [UInt16]
    /// The file's own colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) and bit depth (1...16).
    public let sourceColorType: Int
    public let sourceBitDepth: Int
    public let interlaced: Bool
}

/// PNG decoding and encoding, in memory.
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The pixel limit used when the caller gives none: 100 megapixels.
    public static let defaultMaxPixels = 100_000_000

    /// Decodes any PNG libpng reads (all colour types and bit depths, interlaced or not). Images with more than
    /// `maxPixels` pixels are refused after reading the header, before the pixel buffer is allocated.
    public static func decode(_ data: Data, maxPixels: Int = defaultMaxPixels) throws -> DecodedImage {
        try withDecoder(data, maxPixels: maxPixels) { decoder in
            let info = decoder.info
            guard let layout = DecodedImage.Layout(rawValue: Int(info.channels)) else {
                throw MediaError.pngDecode("unexpected channel count \(info.channels) after expansion")
            }
            let count = Int(info.width) * Int(info.height) * layout.channels
            let samples: [UInt16]
            if info.bit_depth == 16 {
                // The shim asks libpng for host byte order, so the rows are UInt16 values as they stand.
                samples = try [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
                    try decoder.read(into: UnsafeMutableRawBufferPointer(buffer))
                    initialized = count
                }
            } else {
                let bytes = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                    try decoder.read(into: UnsafeMutableRawBufferPointer(buffer))
                    initialized = count
                }
                samples = bytes.map(UInt16.init)
            }
            return DecodedImage(width: Int(info.width), height: Int(info.height), layout: layout,
                                bitDepth: Int(info.bit_depth), samples: samples,
                                sourceColorType: Int(info.source_color_type),
                                sourceBitDepth: Int(info.source_bit_depth), interlaced: info.interlaced != 0)
        }
    }

    /// Decodes any supported PNG to 8-bit RGB: 16-bit samples become round(v / 257), gray is replicated to the
    /// three channels, alpha is dropped (not composited).
    public static func decodeRGB(_ data: Data, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try decodeRGBMeasuringLength(data, maxPixels: maxPixels).image
    }

    /// `decodeRGB`, and the length of the PNG itself: the bytes through its IEND chunk. Anything after IEND
    /// (zeros a hostile upload pads each frame with, say) is not part of the image and need not be kept.
    public static func decodeRGBMeasuringLength(_ data: Data, maxPixels: Int = defaultMaxPixels) throws -> (image: RGBImage, length: Int) {
        try withDecoder(data, maxPixels: maxPixels) { decoder in
            let image = try decodeRGB(decoder)
            return (image, cpng_decoder_bytes_read(decoder.handle))
        }
    }

    /// The RGB conversion of `decodeRGB`, on a decoder whose header has been read.
    private static func decodeRGB(_ decoder: Decoder) throws -> RGBImage {
        let info = decoder.info
        let width = Int(info.width), height = Int(info.height), channels = Int(info.channels)
        let pixelCount = width * height
        if channels == 3 && info.bit_depth == 8 {
            // The common case (8-bit RGB frames): libpng writes straight into the image's storage.
            let pixels = try [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { buffer, initialized in
                try decoder.read(into: UnsafeMutableRawBufferPointer(buffer))
                initialized = pixelCount * 3
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }
        let sampleBytes = info.bit_depth == 16 ? 2 : 1
        let raw = try [UInt8](unsafeUninitializedCapacity: pixelCount * channels * sampleBytes) { buffer, initialized in
            try decoder.read(into: UnsafeMutableRawBufferPointer(buffer))
            initialized = buffer.count
        }
        var pixels = [UInt8](repeating: 0, count: pixelCount * 3)
        raw.withUnsafeBytes { source in
            pixels.withUnsafeMutableBufferPointer { target in
                // Gray (1, 2 channels) feeds all three outputs from channel 0; colour takes channels 0, 1, 2.
                let offsets = channels < 3 ? [0, 0, 0] : [0, 1, 2]
                for pixel in 0..<pixelCount {
                    for c in 0..<3 {
                        let sample = pixel * channels + offsets[c]
                        // sample < pixelCount * channels, inside the decoded rows.
                        let value: UInt8
                        if sampleBytes == 2 {
                            let wide = UInt32(source.loadUnaligned(fromByteOffset: sample * 2, as: UInt16.self))
                            value = UInt8((wide + 128) / 257)  // round(v / 257); v / 257 is never k + 0.5
                        } else {
                            value = source[sample]
                        }
                        target[pixel * 3 + c] = value
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Encodes an 8-bit RGB image.
    public static func encodeRGB8(_ image: RGBImage, compressionLevel: Int = -1) throws -> Data {
        try image.pixels.withUnsafeBytes { pixels in
            try encode(RawImage(width: image.width, height: image.height, colorType: 2, bitDepth: 8),
                       rows: pixels, rowBytes: image.width * 3, compressionLevel: compressionLevel)
        }
    }

    /// Encodes a 16-bit grayscale image (`samples` row-major, `width * height` of them).
    public static func encodeGray16(width: Int, height: Int, samples: [UInt16], compressionLevel: Int = -1) throws -> Data {
        guard width > 0, height > 0, samples.count == width * height else {
            throw MediaError.invalidArgument("a \(width)x\(height) 16-bit gray PNG needs \(max(0, width) * max(0, height)) samples, got \(samples.count)")
        }
        return try samples.withUnsafeBytes { pixels in
            try encode(RawImage(width: width, height: height, colorType: 0, bitDepth: 16),
                       rows: pixels, rowBytes: width * 2, compressionLevel: compressionLevel)
        }
    }

    /// Everything libpng needs to write any PNG; the public encoders and the tests (which write every colour
    /// type, bit depth, palette, tRNS and interlacing) build one of these.
    struct RawImage {
        var width: Int
        var height: Int
        var colorType: Int
        var bitDepth: Int
        var interlaced = false
        var palette: [UInt8] = []       // RGB triples
        var paletteAlpha: [UInt8] = []  // tRNS for palette entries
        var transparentColor: [UInt16]? // tRNS for gray ([g]) or RGB ([r, g, b])
    }

    /// Encodes rows laid out as in the PNG format (samples below 8 bits packed, 16-bit ones in host order).
    static func encode(_ image: RawImage, rows: UnsafeRawBufferPointer, rowBytes: Int, compressionLevel: Int = -1) throws -> Data {
        guard image.width > 0, image.height > 0, image.width <= Int(UInt32.max), image.height <= Int(UInt32.max) else {
            throw MediaError.invalidArgument("cannot encode a \(image.width)x\(image.height) PNG")
        }
        guard rows.count >= rowBytes * image.height else {
            throw MediaError.invalidArgument("PNG rows hold \(rows.count) bytes, \(rowBytes * image.height) needed")
        }
        var description = cpng_image()
        description.width = UInt32(image.width)
        description.height = UInt32(image.height)
        description.bit_depth = Int32(image.bitDepth)
        description.color_type = Int32(image.colorType)
        description.interlaced = image.interlaced ? 1 : 0
        description.compression_level = Int32(max(-1, min(9, compressionLevel)))
        if let color = image.transparentColor {
            description.has_transparent_color = 1
            description.transparent_color.0 = color.count > 0 ? color[0] : 0
            description.transparent_color.1 = color.count > 1 ? color[1] : 0
            description.transparent_color.2 = color.count > 2 ? color[2] : 0
        }
        var output = cpng_buffer()
        var error = cpng_error()
        let status = image.palette.withUnsafeBufferPointer { palette in
            image.paletteAlpha.withUnsafeBufferPointer { alpha in
                description.palette = palette.baseAddress
                description.palette_count = Int32(palette.count / 3)
                description.palette_alpha = alpha.baseAddress
                description.palette_alpha_count = Int32(alpha.count)
                return cpng_encode(&description, rows.bindMemory(to: UInt8.self).baseAddress, rowBytes, &output, &error)
            }
        }
        guard status == 0, let bytes = output.bytes else { throw MediaError.pngEncode(message(of: error)) }
        return Data(bytesNoCopy: bytes, count: output.size, deallocator: .free)
    }

    /// Owns one C decoder for the length of a `withDecoder` call.
    final class Decoder {
        let handle: OpaquePointer
        let info: cpng_info

        init(handle: OpaquePointer, info: cpng_info) {
            self.handle = handle
            self.info = info
        }

        /// Decodes all rows into `buffer`, which must hold exactly `row_bytes * height` bytes.
        func read(into buffer: UnsafeMutableRawBufferPointer) throws {
            var error = cpng_error()
            guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self),
                  cpng_decoder_read_image(handle, base, buffer.count, &error) == 0 else {
                throw MediaError.pngDecode(message(of: error))
            }
        }
    }

    /// Reads the header of `data`, checks the pixel limit and hands the ready decoder to `body`.
    static func withDecoder<Result>(_ data: Data, maxPixels: Int, _ body: (Decoder) throws -> Result) throws -> Result {
        guard data.count >= signature.count, data.prefix(signature.count).elementsEqual(signature) else {
            throw MediaError.notPNG
        }
        return try data.withUnsafeBytes { bytes in
            var error = cpng_error()
            guard let base = bytes.bindMemory(to: UInt8.self).baseAddress,
                  let handle = cpng_decoder_create(base, bytes.count, &error) else {
                throw MediaError.pngDecode(message(of: error))
            }
            defer { cpng_decoder_destroy(handle) }
            var info = cpng_info()
            guard cpng_decoder_read_info(handle, &info, &error) == 0 else { throw MediaError.pngDecode(message(of: error)) }
            let width = Int(info.width), height = Int(info.height)
            let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
            guard !overflow, pixels <= maxPixels else {
                throw MediaError.imageTooLarge(width: width, height: height, maxPixels: maxPixels)
            }
            guard info.row_bytes == width * Int(info.channels) * Int(info.bit_depth / 8) else {
                throw MediaError.pngDecode("unexpected row size \(info.row_bytes) for width \(width)")
            }
            return try body(Decoder(handle: handle, info: info))
        }
    }

    static func message(of error: cpng_error) -> String {
        let text = withUnsafeBytes(of: error.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return text.isEmpty ? "unknown libpng error" : text
    }
}
