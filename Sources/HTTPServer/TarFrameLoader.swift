// Reads the two uploaded tars into frame pairs, checking what can be checked without decoding: every entry a
// PNG whose header parses, equal counts, one size for all frames, and the limits. Interim: once Media's
// `StereoSequence.load(left:right:limits:)` lands, a loader over it replaces this one (it also decodes).
import Foundation
import JobQueue

/// A `FrameLoader` for tars of PNG frames, paired by sorted file name.
public struct TarFrameLoader: FrameLoader {
    public init() {}

    public func loadFrames(left: URL, right: URL, limits: FrameLimits) throws -> [InputFrame] {
        let leftFrames = try Self.readPNGs(left, side: "left", limits: limits)
        let rightFrames = try Self.readPNGs(right, side: "right", limits: limits)
        guard leftFrames.count == rightFrames.count else {
            throw APIError.unprocessable("frame_count_mismatch", "left has \(leftFrames.count) frames, right has \(rightFrames.count)")
        }
        let size = (leftFrames[0].width, leftFrames[0].height)
        for (side, frames) in [("left", leftFrames), ("right", rightFrames)] {
            if let odd = frames.first(where: { ($0.width, $0.height) != size }) {
                throw APIError.unprocessable("frame_size_mismatch",
                                             "\(side)/\(odd.name) is \(odd.width)x\(odd.height), the first left frame is \(size.0)x\(size.1)")
            }
        }
        return zip(leftFrames, rightFrames).enumerated().map { index, pair in
            InputFrame(index: index, name: pair.0.name, left: pair.0.data, right: pair.1.data)
        }
    }

    struct PNGFrame {
        let name: String
        let width: Int
        let height: Int
        let data: Data
    }

    /// The PNG entries of a ustar/GNU tar, sorted by name. Directories, metadata entries and macOS `._` files
    /// are skipped; any other non-PNG regular file is refused.
    static func readPNGs(_ url: URL, side: String, limits: FrameLimits) throws -> [PNGFrame] {
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw APIError(.internalError, "upload_storage", "the \(side) upload vanished")
        }
        defer { try? handle.close() }
        func invalid(_ why: String) -> APIError { APIError.unprocessable("invalid_tar", "\(side): \(why)") }
        var frames: [PNGFrame] = []
        var longName: String?
        while true {
            guard let header = try handle.read(upToCount: 512), header.count == 512 else {
                throw invalid("the archive ends without its end-of-archive blocks")
            }
            let bytes = [UInt8](header)
            if bytes.allSatisfy({ $0 == 0 }) { break }
            let stored = bytes[148..<156].map { $0 == 32 ? 0 : $0 }
            let expected = bytes.enumerated().reduce(0) { $0 + (148..<156 ~= $1.offset ? 32 : Int($1.element)) }
            guard let checksum = octal(stored[...]), checksum == expected else { throw invalid("a header checksum is wrong") }
            guard let size = octal(bytes[124..<136]) else { throw invalid("an entry size is not a number") }
            let padded = (size + 511) / 512 * 512
            var name = longName ?? (string(bytes[345..<500]).map { $0.isEmpty ? "" : $0 + "/" } ?? "") + (string(bytes[0..<100]) ?? "")
            longName = nil
            let type = bytes[156]
            switch type {
            case UInt8(ascii: "0"), 0:
                break
            case UInt8(ascii: "L"):
                // GNU long name: the next entry's name is this entry's data.
                guard size <= 4096, let data = try handle.read(upToCount: padded), data.count == padded else {
                    throw invalid("a long file name is malformed")
                }
                longName = String(decoding: data.prefix(size).prefix { $0 != 0 }, as: UTF8.self)
                continue
            default:
                try skip(handle, padded, invalid)
                continue
            }
            let base = name.split(separator: "/").last.map(String.init) ?? name
            if base.hasPrefix("._") || name.hasPrefix("__MACOSX/") {
                try skip(handle, padded, invalid)
                continue
            }
            guard base.lowercased().hasSuffix(".png") else { throw APIError.unprocessable("invalid_png", "\(side)/\(name) is not a .png file") }
            if frames.count == limits.maxFrames {
                throw APIError(.payloadTooLarge, "too_many_frames", "\(side) has more than \(limits.maxFrames) frames")
            }
            guard let data = try handle.read(upToCount: padded), data.count == padded else { throw invalid("\(name) is truncated") }
            let png = data.prefix(size)
            let (width, height) = try pngSize(png, name: "\(side)/\(name)")
            guard width * height <= limits.maxPixelsPerFrame else {
                throw APIError(.payloadTooLarge, "frame_too_large",
                               "\(side)/\(name) has \(width)x\(height) pixels, more than \(limits.maxPixelsPerFrame)")
            }
            name = base
            frames.append(PNGFrame(name: name, width: width, height: height, data: Data(png)))
        }
        guard !frames.isEmpty else { throw APIError.unprocessable("missing_frames", "\(side) holds no PNG frames") }
        let sorted = frames.sorted { $0.name < $1.name }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.name == b.name {
            throw APIError.unprocessable("invalid_tar", "\(side) has two frames named \(a.name)")
        }
        return sorted
    }

    /// Width and height from the IHDR chunk, which must come first after the signature.
    static func pngSize(_ data: Data, name: String) throws -> (Int, Int) {
        let bytes = [UInt8](data.prefix(33))
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count == 33, Array(bytes[0..<8]) == signature, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            throw APIError.unprocessable("invalid_png", "\(name) is not a PNG image")
        }
        func be32(_ at: Int) -> Int { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        let width = be32(16)
        let height = be32(20)
        guard width > 0, height > 0, width <= 1 << 16, height <= 1 << 16 else {
            throw APIError.unprocessable("invalid_png", "\(name) has an impossible size \(width)x\(height)")
        }
        return (width, height)
    }

    private static func skip(_ handle: FileHandle, _ count: Int, _ invalid: (String) -> APIError) throws {
        let target = try handle.offset() + UInt64(count)
        guard target <= (try handle.seekToEnd()) else { throw invalid("an entry runs past the end of the archive") }
        try handle.seek(toOffset: target)
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        let digits = field.prefix { $0 != 0 }.filter { $0 != 32 }
        guard !digits.isEmpty, digits.count <= 11, digits.allSatisfy({ (48...55).contains($0) }) else { return nil }
        return digits.reduce(0) { $0 * 8 + Int($1 - 48) }
    }

    private static func string(_ field: ArraySlice<UInt8>) -> String? {
        let bytes = field.prefix { $0 != 0 }
        return String(bytes: bytes, encoding: .utf8)
    }
}
