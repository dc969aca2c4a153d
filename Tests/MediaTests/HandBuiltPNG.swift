// PNG files assembled byte by byte (stored deflate blocks, own CRC-32 and Adler-32), so the decoder is checked
// against files that libpng did not write.
import Foundation

enum HandBuiltPNG {
    /// A PNG whose IDAT holds `rows` (each already prefixed with its filter byte) in stored deflate blocks.
    static func make(width: Int, height: Int, bitDepth: Int, colorType: Int, rows: [UInt8],
                     palette: [UInt8]? = nil, transparency: [UInt8]? = nil) -> Data {
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = bigEndian32(UInt32(width)) + bigEndian32(UInt32(height))
        header += [UInt8(bitDepth), UInt8(colorType), 0, 0, 0]
        png.append(chunk("IHDR", header))
        if let palette { png.append(chunk("PLTE", palette)) }
        if let transparency { png.append(chunk("tRNS", transparency)) }
        png.append(chunk("IDAT", zlibStored(rows)))
        png.append(chunk("IEND", []))
        return png
    }

    static func chunk(_ type: String, _ body: [UInt8]) -> Data {
        let typeBytes = Array(type.utf8)
        var out = bigEndian32(UInt32(body.count)) + typeBytes + body
        out += bigEndian32(crc32(typeBytes + body))
        return Data(out)
    }

    /// A zlib stream made of stored (uncompressed) deflate blocks.
    static func zlibStored(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(bytes.count, start + 65535)
            let length = end - start
            out.append(end == bytes.count ? 1 : 0)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += bytes[start..<end]
            start = end
        } while start < bytes.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + bigEndian32(b << 16 | a)
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func bigEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
