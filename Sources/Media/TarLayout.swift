// The bytes of a ustar archive known before its contents are read: for serving result.tar with a
// Content-Length and byte ranges while the contents stay in the database.
import Foundation

/// A tar archive of regular files whose sizes are known, laid out as `TarWriter` writes it: per file a
/// 512-byte header, the contents, zero padding to a whole block; then two zero blocks.
public struct TarLayout: Sendable {
    /// One member: where its header starts, and its contents' size.
    public struct Member: Sendable {
        public let path: String
        public let size: Int
        public let offset: Int
        /// The header block: the same bytes `TarWriter.addFile` writes for this path and size.
        public let header: [UInt8]
        public var contentOffset: Int { offset + TarHeader.blockSize }
        /// The bytes the member takes: header, contents, padding.
        public var length: Int { TarHeader.blockSize + size + TarHeader.padding(after: size) }
    }

    public let members: [Member]
    /// The whole archive's size.
    public let size: Int

    /// Nil when a path does not fit a plain ustar header (more than 100 bytes that no slash splits into
    /// 155 + 100): such an archive needs long-name entries and is written by `TarWriter` instead.
    public init?(files: [(path: String, size: Int)]) {
        let writer = TarWriter()
        var members: [Member] = []
        var offset = 0
        for file in files {
            var name = Array(file.path.utf8), prefix: [UInt8] = []
            if name.count > 100 {
                guard let split = TarWriter.ustarSplit(name) else { return nil }
                (prefix, name) = split
            }
            let header = writer.header(name: name, prefix: prefix, typeFlag: UInt8(ascii: "0"), size: file.size, mode: 0o644)
            let member = Member(path: file.path, size: file.size, offset: offset, header: header)
            members.append(member)
            offset += member.length
        }
        self.members = members
        size = offset + 2 * TarHeader.blockSize
    }

    /// Writes bytes `range` of the archive to `sink`; `contents(member, within)` writes bytes `within` of a
    /// member's contents (relative to its start) and is asked only for members the range covers.
    public func write(_ range: Range<Int>, to sink: (Data) throws -> Void,
                      contents: (Member, Range<Int>) throws -> Void) throws {
        precondition(range.lowerBound >= 0 && range.upperBound <= size, "a range within the archive")
        func zeros(_ count: Int) throws { if count > 0 { try sink(Data(count: count)) } }
        for member in members where member.offset < range.upperBound && member.offset + member.length > range.lowerBound {
            let headerEnd = member.contentOffset, contentEnd = headerEnd + member.size
            if range.lowerBound < headerEnd {
                try sink(Data(member.header[(max(range.lowerBound, member.offset) - member.offset)..<(min(range.upperBound, headerEnd) - member.offset)]))
            }
            let from = max(range.lowerBound, headerEnd), to = min(range.upperBound, contentEnd)
            if from < to { try contents(member, (from - headerEnd)..<(to - headerEnd)) }
            try zeros(min(range.upperBound, member.offset + member.length) - max(range.lowerBound, contentEnd))
        }
        let end = size - 2 * TarHeader.blockSize
        try zeros(range.upperBound - max(range.lowerBound, end))
    }
}
