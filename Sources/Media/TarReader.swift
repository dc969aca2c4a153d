// Streaming tar reader: ustar, GNU long names ('L', 'K'), pax headers ('x', 'g'), optionally gzip-compressed.
import Foundation

/// One member of a tar archive, as its header describes it. The contents are read separately, on demand.
public struct TarEntry: Equatable, Sendable {
    /// What the member is.
    public enum Kind: Equatable, Sendable {
        case file, directory, symbolicLink, hardLink
        /// Devices, FIFOs and vendor types, with their type flag.
        case other(UInt8)
    }

    /// The member's path, relative, with `.` components and repeated slashes removed.
    public let path: String
    public let kind: Kind
    /// Bytes of content that follow the header.
    public let size: Int
    /// The target of a link (empty otherwise).
    public let linkTarget: String

    /// The last component of `path`.
    public var fileName: String { path.split(separator: "/").last.map(String.init) ?? path }
}

/// Reads a tar archive one entry at a time, from a file (FileHandle reads of 64 KiB) or from memory; gzip input,
/// recognised by its magic bytes, is inflated as it streams. Entries with absolute paths or `..` components are
/// refused with `MediaError.unsafeTarPath`. Errors are final: after one, stop reading.
///
///     let reader = try TarReader(url: archive)
///     while let entry = try reader.next() {
///         if entry.kind == .file { let bytes = try reader.readContents(maxBytes: limit) }
///     }
public final class TarReader {
    /// The archive's name for messages: the file's last path component, or the name given for memory.
    public let archiveName: String
    private let reader: ByteReader
    /// The entry `next()` returned last: content bytes not yet read, then the padding to the next block.
    private var current: TarEntry?
    private var remainingContent = 0
    private var remainingPadding = 0
    private var globalRecords: [String: String] = [:]
    private var ended = false

    /// Whether the archive is gzip-compressed; offsets then count bytes of the inflated stream.
    public let isCompressed: Bool
    /// Where the content of the entry `next()` returned last begins, in bytes from the start of the
    /// (uncompressed) archive; lets a caller read that content again later without keeping it.
    public private(set) var contentOffset = 0

    /// The most bytes the (uncompressed) archive may span; an entry announcing more is refused at its header,
    /// before anything is read, so a gzip bomb cannot keep the reader busy. A compressed archive is also cut
    /// off as it inflates, a read-ahead past this (`inflatedTooLarge`), whatever its headers say.
    public var maxArchiveBytes = Int.max {
        didSet {
            gzip?.maxOutputBytes = maxArchiveBytes > Int.max - Self.readAhead ? Int.max : maxArchiveBytes + Self.readAhead
        }
    }

    /// The most a compressed archive may inflate to per compressed byte (judged once 16 MiB have come out);
    /// more is refused with `compressionRatioTooHigh`. PNG frames are compressed already, so a tar of them
    /// gzips by a few percent, tar headers and padding aside.
    public var maxCompressionRatio = Int.max {
        didSet { gzip?.maxRatio = maxCompressionRatio }
    }

    /// How far the buffered reader may inflate beyond what the archive uses (one chunk and the end blocks).
    static let readAhead = (1 << 16) + 2 * TarHeader.blockSize

    /// The inflating source of a compressed archive, for its limits and counts.
    private let gzip: GzipByteSource?

    /// Bytes of the uncompressed archive read so far (the inflated stream for a compressed one).
    public var bytesRead: Int { reader.offset }

    /// Metadata entries (long names, pax records) are read into memory; anything larger is surely not metadata.
    static let maxMetadataBytes = 1 << 20

    /// Opens a tar or tar.gz file.
    public convenience init(url: URL) throws {
        try self.init(source: FileByteSource(url: url), name: url.lastPathComponent)
    }

    /// Reads a tar or tar.gz held in memory.
    public convenience init(data: Data, name: String = "archive") throws {
        try self.init(source: DataByteSource(data), name: name)
    }

    init(source: ByteSource, name: String) throws {
        archiveName = name
        let raw = ByteReader(source)
        let magic = try raw.peek(6)
        if magic.starts(with: [0x1F, 0x8B]) {
            let source = try GzipByteSource(upstream: RawReaderSource(raw), archive: name)
            gzip = source
            reader = ByteReader(source)
            isCompressed = true
            return
        }
        gzip = nil
        if magic.starts(with: Array("BZh".utf8)) {
            throw MediaError.badTar(archive: name, reason: "bzip2-compressed archives are not supported (use .tar or .tar.gz)")
        } else if magic.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            throw MediaError.badTar(archive: name, reason: "xz-compressed archives are not supported (use .tar or .tar.gz)")
        } else if magic.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) {
            throw MediaError.badTar(archive: name, reason: "zstd-compressed archives are not supported (use .tar or .tar.gz)")
        }
        reader = raw
        isCompressed = false
    }

    /// The next entry's header, or nil at the end of the archive. Unread content of the previous entry is skipped.
    public func next() throws -> TarEntry? {
        try skipRestOfCurrent()
        if ended { return nil }
        var longName: String?
        var longLink: String?
        var localRecords: [String: String] = [:]
        while true {
            let headerOffset = reader.offset
            let block = try reader.read(TarHeader.blockSize)
            if block.isEmpty {
                // No end-of-archive blocks; every member so far was complete, so accept the archive as it is.
                ended = true
                return nil
            }
            guard block.count == TarHeader.blockSize else {
                if headerOffset == 0 {
                    throw MediaError.badTar(archive: archiveName, reason: "not a tar archive (only \(block.count) bytes)")
                }
                throw MediaError.badTar(archive: archiveName, reason: "truncated: the archive ends inside a header at byte \(headerOffset)")
            }
            if block.allSatisfy({ $0 == 0 }) {
                ended = true
                return nil
            }
            let header: TarHeader
            do {
                header = try TarHeader(block: block)
            } catch let TarHeader.ParseError.invalid(why) {
                let reason = headerOffset == 0 ? "not a tar archive (\(why) in the first header)" : "\(why) in the header at byte \(headerOffset)"
                throw MediaError.badTar(archive: archiveName, reason: reason)
            }

            switch header.typeFlag {
            case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g"):
                let content = try readMetadata(size: header.size, headerOffset: headerOffset)
                switch header.typeFlag {
                case UInt8(ascii: "L"): longName = TarHeader.string(content)
                case UInt8(ascii: "K"): longLink = TarHeader.string(content)
                case UInt8(ascii: "x"): localRecords.merge(try parsePax(content, headerOffset), uniquingKeysWith: { $1 })
                default: globalRecords.merge(try parsePax(content, headerOffset), uniquingKeysWith: { $1 })
                }
                continue
            default:
                break
            }

            let records = globalRecords.merging(localRecords, uniquingKeysWith: { $1 })
            let rawPath = records["path"] ?? longName ?? header.path
            let kind: TarEntry.Kind
            switch header.typeFlag {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symbolicLink
            case UInt8(ascii: "1"): kind = .hardLink
            default: kind = .other(header.typeFlag)
            }
            var size = header.size
            if let text = records["size"] {
                guard let value = Int(text), value >= 0 else {
                    throw MediaError.badTar(archive: archiveName, reason: "bad pax size '\(text)' for \(rawPath)")
                }
                size = value
            }
            // Links carry no content whatever their size field says.
            if kind == .symbolicLink || kind == .hardLink { size = 0 }
            let path = try normalize(rawPath, kind: kind)
            let (end, overflow) = reader.offset.addingReportingOverflow(size)
            guard !overflow, end <= maxArchiveBytes else {
                if isCompressed { throw MediaError.inflatedTooLarge(archive: archiveName, limit: maxArchiveBytes) }
                throw MediaError.badTar(archive: archiveName, reason: "entry \(path) of \(size) bytes takes the archive past the limit of \(maxArchiveBytes) bytes")
            }
            let entry = TarEntry(path: path, kind: kind, size: size,
                                 linkTarget: records["linkpath"] ?? longLink ?? header.linkName)
            current = entry
            contentOffset = reader.offset
            remainingContent = size
            remainingPadding = TarHeader.padding(after: size)
            return entry
        }
    }

    /// The whole content of the entry `next()` returned last. Throws `fileTooLarge` beyond `maxBytes`
    /// (nothing read) and `badTar` when the archive ends early.
    public func readContents(maxBytes: Int = Int.max) throws -> Data {
        guard let entry = current else {
            throw MediaError.invalidArgument("TarReader.readContents called with no current entry")
        }
        guard entry.size <= maxBytes else {
            throw MediaError.fileTooLarge(file: "\(entry.path) in \(archiveName)", size: entry.size, limit: maxBytes)
        }
        let alreadyRead = entry.size - remainingContent
        guard alreadyRead == 0 else {
            throw MediaError.invalidArgument("the contents of \(entry.path) were already read")
        }
        let bytes = try reader.read(remainingContent)
        remainingContent -= bytes.count
        guard remainingContent == 0 else { throw truncated(entry) }
        return Data(bytes)
    }

    /// The next up-to-`maxBytes` (> 0) bytes of the current entry's content, in order, so a large entry can be
    /// consumed piece by piece; empty once all of it has been read. Throws `badTar` when the archive ends early.
    public func readContentChunk(maxBytes: Int) throws -> Data {
        precondition(maxBytes > 0, "readContentChunk needs a positive size")
        guard let entry = current else {
            throw MediaError.invalidArgument("TarReader.readContentChunk called with no current entry")
        }
        let wanted = min(maxBytes, remainingContent)
        guard wanted > 0 else { return Data() }
        let bytes = try reader.read(wanted)
        remainingContent -= bytes.count
        guard bytes.count == wanted else { throw truncated(entry) }
        return Data(bytes)
    }

    private func skipRestOfCurrent() throws {
        guard let entry = current else { return }
        let skipped = try reader.skip(remainingContent)
        remainingContent -= skipped
        guard remainingContent == 0 else { throw truncated(entry) }
        // A missing tail of padding loses no data; the next read then finds the end of the stream.
        _ = try reader.skip(remainingPadding)
        current = nil
    }

    private func truncated(_ entry: TarEntry) -> MediaError {
        .badTar(archive: archiveName, reason: "truncated: entry \(entry.path) has \(entry.size) bytes but the archive ends after \(entry.size - remainingContent)")
    }

    private func readMetadata(size: Int, headerOffset: Int) throws -> [UInt8] {
        guard size <= Self.maxMetadataBytes else {
            throw MediaError.badTar(archive: archiveName, reason: "metadata entry of \(size) bytes at byte \(headerOffset) is implausibly large")
        }
        guard reader.offset + size <= maxArchiveBytes else {
            throw MediaError.badTar(archive: archiveName, reason: "metadata entry at byte \(headerOffset) takes the archive past the limit of \(maxArchiveBytes) bytes")
        }
        let content = try reader.read(size)
        guard content.count == size else {
            throw MediaError.badTar(archive: archiveName, reason: "truncated: the archive ends inside the metadata entry at byte \(headerOffset)")
        }
        _ = try reader.skip(TarHeader.padding(after: size))
        return content
    }

    /// Pax records are "LENGTH KEY=VALUE\n", LENGTH counting the whole record in bytes.
    private func parsePax(_ bytes: [UInt8], _ headerOffset: Int) throws -> [String: String] {
        var records: [String: String] = [:]
        var start = 0
        let malformed = MediaError.badTar(archive: archiveName, reason: "malformed pax header at byte \(headerOffset)")
        while start < bytes.count {
            if bytes[start] == 0 { break }  // some writers pad the record block with NULs
            guard let space = bytes[start...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: bytes[start..<space], as: UTF8.self)),
                  length > space - start, length <= bytes.count - start, bytes[start + length - 1] == UInt8(ascii: "\n"),
                  let equals = bytes[(space + 1)..<(start + length)].firstIndex(of: UInt8(ascii: "=")) else {
                throw malformed
            }
            let key = String(decoding: bytes[(space + 1)..<equals], as: UTF8.self)
            let value = String(decoding: bytes[(equals + 1)..<(start + length - 1)], as: UTF8.self)
            records[key] = value
            start += length
        }
        return records
    }

    /// Drops `.` components and repeated slashes; refuses absolute paths and `..` anywhere.
    private func normalize(_ raw: String, kind: TarEntry.Kind) throws -> String {
        if raw.hasPrefix("/") { throw MediaError.unsafeTarPath(archive: archiveName, entry: raw) }
        let components = raw.split(separator: "/", omittingEmptySubsequences: true)
        if components.contains("..") { throw MediaError.unsafeTarPath(archive: archiveName, entry: raw) }
        let kept = components.filter { $0 != "." }
        if kept.isEmpty {
            // "./" heads archives made with `tar -C dir .`; a nameless file is another matter.
            if kind == .directory { return "." }
            throw MediaError.badTar(archive: archiveName, reason: "an entry has an empty name ('\(raw)')")
        }
        return kept.joined(separator: "/")
    }
}

/// Lets a GzipByteSource pull from the ByteReader that already peeked at the magic bytes.
private final class RawReaderSource: ByteSource {
    let reader: ByteReader
    init(_ reader: ByteReader) { self.reader = reader }
    func read(upTo maxCount: Int) throws -> [UInt8] { try reader.read(maxCount) }
}

/// The fields of a 512-byte tar header that matter here, with the checksum verified.
struct TarHeader {
    static let blockSize = 512

    enum ParseError: Error { case invalid(String) }

    let path: String
    let size: Int
    let typeFlag: UInt8
    let linkName: String

    init(block: [UInt8]) throws {
        precondition(block.count == Self.blockSize)
        let stored = try Self.number(block[148..<156], field: "checksum")
        var unsigned = 0, signed = 0
        for (index, byte) in block.enumerated() {
            let value = (148..<156).contains(index) ? 0x20 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        // Some old writers summed signed chars; either sum is a valid header.
        guard stored == unsigned || stored == signed else { throw ParseError.invalid("checksum mismatch") }
        typeFlag = block[156]
        size = try Self.number(block[124..<136], field: "size")
        linkName = Self.string(block[157..<257])
        let name = Self.string(block[0..<100])
        // POSIX ustar ("ustar\0") splits long paths into prefix + name; GNU's "ustar  \0" uses that space otherwise.
        if Array(block[257..<263]) == Array("ustar\0".utf8) {
            let prefix = Self.string(block[345..<500])
            path = prefix.isEmpty ? name : prefix + "/" + name
        } else {
            path = name
        }
    }

    /// Bytes of zero padding after `size` bytes of content, up to the next 512-byte boundary.
    static func padding(after size: Int) -> Int { (blockSize - size % blockSize) % blockSize }

    /// Text up to the first NUL, as UTF-8 (invalid bytes become U+FFFD rather than failing).
    static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
    }

    /// An octal field (spaces and NULs around the digits), or GNU's base-256 form flagged by the top bit.
    static func number(_ field: ArraySlice<UInt8>, field name: String) throws -> Int {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            guard first == 0x80 else { throw ParseError.invalid("negative or oversized base-256 \(name)") }
            var value = 0
            for byte in field.dropFirst() {
                guard value <= (Int.max >> 8) else { throw ParseError.invalid("oversized \(name)") }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var seenDigit = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value <= (Int.max >> 3) else { throw ParseError.invalid("oversized \(name)") }
                value = value << 3 | Int(byte - UInt8(ascii: "0"))
                seenDigit = true
            case UInt8(ascii: " "), 0:
                if seenDigit { return value }
            default:
                throw ParseError.invalid("bad \(name) field")
            }
        }
        return value
    }
}
