// Writes a ustar archive entry by entry, so result.tar streams without holding every result at once.
import Foundation

/// Produces the bytes of a POSIX ustar archive.
enum TarStream {
    /// The 512-byte header and the padded data of one regular file.
    static func entry(path: String, data: Data, modified: Date = Date()) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        let (prefix, name) = splitPath(path)
        put(name, into: &header, at: 0, width: 100)
        put(octal(0o644, width: 8), into: &header, at: 100, width: 8)
        put(octal(0, width: 8), into: &header, at: 108, width: 8)
        put(octal(0, width: 8), into: &header, at: 116, width: 8)
        put(octal(data.count, width: 12), into: &header, at: 124, width: 12)
        put(octal(max(0, Int(modified.timeIntervalSince1970)), width: 12), into: &header, at: 136, width: 12)
        header[156] = UInt8(ascii: "0")
        put("ustar", into: &header, at: 257, width: 6)
        put("00", into: &header, at: 263, width: 2)
        put(prefix, into: &header, at: 345, width: 155)
        // The checksum is computed with its own field read as eight spaces.
        for index in 148..<156 { header[index] = 32 }
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", checksum) + "\0 ", into: &header, at: 148, width: 8)
        var bytes = header
        bytes.append(contentsOf: data)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: (512 - data.count % 512) % 512))
        return bytes
    }

    /// Two zero blocks end an archive.
    static let end = [UInt8](repeating: 0, count: 1024)

    /// Result paths are short (`disparity/12.png`); longer ones use the prefix field, split at a slash.
    private static func splitPath(_ path: String) -> (prefix: String, name: String) {
        if path.utf8.count <= 100 { return ("", path) }
        if let slash = path.lastIndex(of: "/"), path[..<slash].utf8.count <= 155, path[path.index(after: slash)...].utf8.count <= 100 {
            return (String(path[..<slash]), String(path[path.index(after: slash)...]))
        }
        return ("", String(path.utf8.suffix(100)) ?? "result")
    }

    private static func octal(_ value: Int, width: Int) -> String {
        let digits = String(value, radix: 8)
        return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
    }

    private static func put(_ text: String, into header: inout [UInt8], at offset: Int, width: Int) {
        for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
    }
}
