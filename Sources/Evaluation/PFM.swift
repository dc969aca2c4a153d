// Portable float maps (.pfm), the disparity files of Middlebury and SceneFlow.
import Foundation

/// Reading one-channel PFM files. The format: the line `Pf` (`PF` is three channels), then width and height,
/// then a scale whose sign gives the byte order (negative: little-endian), each separated by white space and
/// the scale followed by exactly one white-space byte; then width × height float32 values, rows from the
/// bottom of the image up. The scale's magnitude is ignored, as the reference's reader ignores it.
public enum PFM {
    /// A decoded map: `values` are [H, W] row-major with the top row first.
    public struct Map: Equatable, Sendable {
        public let width: Int
        public let height: Int
        public let values: [Float]
    }

    /// Whether `data` starts like a PFM file (either channel count).
    static func looksLikePFM(_ data: Data) -> Bool {
        let head = [UInt8](data.prefix(3))
        return head.count == 3 && head[0] == UInt8(ascii: "P") && (head[1] == UInt8(ascii: "f") || head[1] == UInt8(ascii: "F"))
            && isSpace(head[2])
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// Decodes a one-channel PFM; `file` names it in errors.
    public static func decode(_ data: Data, file: String) throws -> Map {
        func refuse(_ reason: String) -> EvaluationError { .notDisparity(file: file, reason: reason) }
        let bytes = [UInt8](data)
        guard looksLikePFM(data) else { throw refuse("not a PFM file (no Pf header)") }
        guard bytes[1] == UInt8(ascii: "f") else {
            throw refuse("a three-channel PFM (PF), not a one-channel disparity map (Pf)")
        }
        // The three header tokens after the magic: width, height, scale.
        var position = 2
        var tokens: [String] = []
        while tokens.count < 3 {
            while position < bytes.count, isSpace(bytes[position]) { position += 1 }
            let start = position
            while position < bytes.count, !isSpace(bytes[position]), position - start < 64 { position += 1 }
            guard position > start, position < bytes.count else { throw refuse("truncated PFM header") }
            tokens.append(String(decoding: bytes[start..<position], as: UTF8.self))
        }
        position += 1  // the single white-space byte after the scale
        guard let width = Int(tokens[0]), let height = Int(tokens[1]), width > 0, height > 0 else {
            throw refuse("bad PFM size '\(tokens[0]) \(tokens[1])'")
        }
        guard let scale = Double(tokens[2]), scale.isFinite, scale != 0 else {
            throw refuse("bad PFM scale '\(tokens[2])'")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= 1 << 28 else { throw refuse("a PFM of \(width)x\(height) is implausibly large") }
        guard bytes.count - position == pixels * 4 else {
            throw refuse("a \(width)x\(height) PFM needs \(pixels * 4) bytes of data, the file has \(bytes.count - position)")
        }
        let littleEndian = scale < 0
        var values = [Float](repeating: 0, count: pixels)
        bytes.withUnsafeBytes { raw in
            for fileRow in 0..<height {
                let row = height - 1 - fileRow  // the file's first row is the image's bottom row
                for column in 0..<width {
                    // The offset stays inside the data: the size was checked above.
                    let bits = raw.loadUnaligned(fromByteOffset: position + (fileRow * width + column) * 4, as: UInt32.self)
                    values[row * width + column] = Float(bitPattern: littleEndian ? UInt32(littleEndian: bits) : UInt32(bigEndian: bits))
                }
            }
        }
        return Map(width: width, height: height, values: values)
    }
}
