// Streaming ustar writer: the server streams result.tar with it, the tests build their archives with it.
import Foundation

/// Writes a ustar archive entry by entry to a sink (a FileHandle, memory, or any closure, such as an HTTP body
/// writer). Paths longer than ustar's name and prefix fields allow are written with a pax `path` record or a GNU
/// long-name entry. Call `finish()` to write the end-of-archive blocks.
public final class TarWriter {
    /// How paths that do not fit the ustar header are written.
    public enum LongNames: Sendable {
        /// A pax extended header ('x') with a `path` record: POSIX.1-2001.
        case pax
        /// A GNU ././@LongLink entry ('L').
        case gnu
    }

    private let sink: (Data) throws -> Void
    private let longNames: LongNames
    private let memory: MemoryBox?
    private var finished = false

    /// The archive so far, for a writer made with `init(longNames:)`; empty for other sinks.
    public var data: Data { memory?.data ?? Data() }

    /// Writes into memory; read the result from `data` after `finish()`.
    public init(longNames: LongNames = .pax) {
        let box = MemoryBox()
        memory = box
        sink = { box.data.append($0) }
        self.longNames = longNames
    }

    /// Writes to an open file handle as entries are added.
    public convenience init(fileHandle: FileHandle, longNames: LongNames = .pax) {
        self.init(longNames: longNames, sink: { try fileHandle.write(contentsOf: $0) })
    }

    /// Hands each piece of the archive (headers, contents, padding) to `sink` as soon as it is made.
    public init(longNames: LongNames = .pax, sink: @escaping (Data) throws -> Void) {
        memory = nil
        self.sink = sink
        self.longNames = longNames
    }

    /// Adds a regular file. `path` must be relative, without `..` components.
    public func addFile(path: String, contents: Data, mode: Int = 0o644, modificationTime: Int = 0) throws {
        try write(path: try checked(path), typeFlag: UInt8(ascii: "0"), contents: contents, mode: mode,
                  modificationTime: modificationTime)
    }

    /// Adds a directory entry.
    public func addDirectory(path: String, mode: Int = 0o755, modificationTime: Int = 0) throws {
        let name = try checked(path)
        try write(path: name.hasSuffix("/") ? name : name + "/", typeFlag: UInt8(ascii: "5"), contents: Data(),
                  mode: mode, modificationTime: modificationTime)
    }

    /// Writes the two zero blocks that end an archive. Adding entries afterwards is an error.
    public func finish() throws {
        guard !finished else { return }
        try sink(Data(count: 2 * TarHeader.blockSize))
        finished = true
    }

    private func checked(_ path: String) throws -> String {
        let components = path.split(separator: "/")
        guard !path.isEmpty, !path.hasPrefix("/"), !components.contains(".."), !path.utf8.contains(0) else {
            throw MediaError.invalidArgument("tar entry path '\(path)' must be relative, without '..'")
        }
        return path
    }

    /// Writes one member, preceded by a long-name entry when the path does not fit. No path checks: the tests
    /// use this directly to build hostile archives.
    func write(path: String, typeFlag: UInt8, contents: Data, mode: Int = 0o644, modificationTime: Int = 0,
               linkTarget: String = "") throws {
        guard !finished else { throw MediaError.invalidArgument("TarWriter: entry \(path) added after finish()") }
        var nameField = Array(path.utf8)
        var prefixField: [UInt8] = []
        if nameField.count > 100 {
            if let split = Self.ustarSplit(nameField) {
                (prefixField, nameField) = split
            } else {
                switch longNames {
                case .pax:
                    try writePax(records: ["path": path], global: false, name: "PaxHeader/" + String(decoding: nameField.suffix(80), as: UTF8.self))
                case .gnu:
                    try writeRaw(header(name: Array("././@LongLink".utf8), typeFlag: UInt8(ascii: "L"),
                                        size: nameField.count + 1, mode: 0o644), contents: Data(nameField + [0]))
                }
                nameField = Array(nameField.prefix(100))
            }
        }
        try writeRaw(header(name: nameField, prefix: prefixField, typeFlag: typeFlag, size: contents.count, mode: mode,
                            modificationTime: modificationTime, linkName: Array(linkTarget.utf8)),
                     contents: contents)
    }

    /// Writes a pax extended ('x') or global ('g') header holding `records`.
    func writePax(records: [String: String], global: Bool, name: String = "PaxHeader") throws {
        var body = Data()
        for (key, value) in records.sorted(by: { $0.key < $1.key }) {
            let text = " \(key)=\(value)\n"
            // The length prefix counts its own digits, so grow it until it is self-consistent.
            var length = text.utf8.count + 1
            while String(length).count + text.utf8.count != length { length = String(length).count + text.utf8.count }
            body.append(Data((String(length) + text).utf8))
        }
        try writeRaw(header(name: Array(name.utf8.prefix(100)), typeFlag: UInt8(ascii: global ? "g" : "x"),
                            size: body.count, mode: 0o644), contents: body)
    }

    /// Writes a header block and the contents padded to a whole block.
    func writeRaw(_ header: [UInt8], contents: Data) throws {
        try sink(Data(header))
        if !contents.isEmpty { try sink(contents) }
        let padding = TarHeader.padding(after: contents.count)
        if padding > 0 { try sink(Data(count: padding)) }
    }

    /// Splits a path at a slash so the tail fits the 100-byte name field and the head the 155-byte prefix.
    static func ustarSplit(_ path: [UInt8]) -> (prefix: [UInt8], name: [UInt8])? {
        guard path.count <= 256 else { return nil }
        for index in path.indices where path[index] == UInt8(ascii: "/") {
            let prefix = Array(path[..<index]), name = Array(path[(index + 1)...])
            if prefix.count <= 155, name.count <= 100, !name.isEmpty { return (prefix, name) }
        }
        return nil
    }

    /// A ustar header block (magic "ustar\0", version "00") with its checksum.
    func header(name: [UInt8], prefix: [UInt8] = [], typeFlag: UInt8, size: Int, mode: Int,
                modificationTime: Int = 0, linkName: [UInt8] = []) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: TarHeader.blockSize)
        func put(_ bytes: [UInt8], at offset: Int, width: Int) {
            for (i, byte) in bytes.prefix(width).enumerated() { block[offset + i] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            let digits = String(value, radix: 8)
            put(Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8), at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(mode & 0o7777, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        if size < 0o77777777777 {
            octal(size, at: 124, width: 12)
        } else {
            // Beyond 8 GiB the octal field overflows: GNU base-256, flagged by the top bit.
            block[124] = 0x80
            for i in 0..<8 { block[135 - i] = UInt8((size >> (8 * i)) & 0xFF) }
        }
        octal(max(0, modificationTime), at: 136, width: 12)
        block[156] = typeFlag
        put(linkName, at: 157, width: 100)
        put(Array("ustar\0".utf8), at: 257, width: 6)
        put(Array("00".utf8), at: 263, width: 2)
        put(prefix, at: 345, width: 155)
        let checksum = block.enumerated().reduce(0) { $0 + ((148..<156).contains($1.offset) ? 0x20 : Int($1.element)) }
        octal(checksum, at: 148, width: 7)
        block[155] = UInt8(ascii: " ")
        return block
    }

    private final class MemoryBox {
        var data = Data()
    }
}
