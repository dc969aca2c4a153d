// The zip container that torch.save writes (PKWARE APPNOTE): central directory, zip64, stored and deflate entries.
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One file of a zip archive, as its central directory describes it.
struct ZipEntry {
    let name: String
    let method: UInt16
    let flags: UInt16
    let crc32: UInt32
    let compressedSize: Int
    let uncompressedSize: Int
    let localHeaderOffset: Int
}

/// The bytes an archive may still inflate, shared by every entry read from it.
final class InflateBudget {
    let limit: Int
    private(set) var remaining: Int

    init(limit: Int) {
        self.limit = limit
        remaining = limit
    }

    func spend(_ count: Int) { remaining -= min(count, remaining) }
}

/// A read-only zip archive over mapped bytes.
///
/// Stored entries (what torch.save writes) are returned as windows into the mapping, without a copy;
/// deflated entries are inflated into a buffer of their own. Every size the archive claims is checked against
/// the file before anything is allocated, and what all deflated entries together may inflate to is capped
/// (`inflateLimit`), so a forged or truthful zip bomb costs at most that much memory before it is refused.
struct ZipArchive {
    let bytes: ByteRegion
    let entries: [String: ZipEntry]
    /// Entry names in central-directory order.
    let names: [String]
    let budget: InflateBudget

    /// What the deflated entries of an archive of `fileSize` bytes may inflate to in total: 16 times the file
    /// (weights compress by a few percent, never that much), and never less than 64 MiB. torch.save stores its
    /// entries, so a real checkpoint inflates only its small records.
    static func defaultInflateLimit(fileSize: Int) -> Int {
        max(64 << 20, fileSize.multipliedReportingOverflow(by: 16).overflow ? Int.max : fileSize * 16)
    }

    static let localHeaderSignature: UInt64 = 0x0403_4B50
    static let centralHeaderSignature: UInt64 = 0x0201_4B50
    static let endSignature: UInt64 = 0x0605_4B50
    static let zip64EndSignature: UInt64 = 0x0606_4B50
    static let zip64LocatorSignature: UInt64 = 0x0706_4B50

    init(_ bytes: ByteRegion, inflateLimit: Int? = nil) throws {
        self.bytes = bytes
        budget = InflateBudget(limit: inflateLimit ?? ZipArchive.defaultInflateLimit(fileSize: bytes.count))
        let end = try ZipArchive.findEndRecord(bytes)
        var entryCount = Int(bytes.littleEndian(end + 10, width: 2))
        var directorySize = Int(bytes.littleEndian(end + 12, width: 4))
        var directoryOffset = Int(bytes.littleEndian(end + 16, width: 4))

        // A zip64 locator sits right before the end record; its fields replace the saturated 16/32-bit ones.
        if end >= 20, bytes.littleEndian(end - 20, width: 4) == ZipArchive.zip64LocatorSignature {
            let recordOffset = bytes.littleEndian(end - 20 + 8, width: 8)
            guard recordOffset < UInt64(bytes.count) else {
                throw CheckpointError.malformedArchive("zip64 end record offset \(recordOffset) is past the end of the file")
            }
            let record = Int(recordOffset)
            guard try bytes.checkedLittleEndian(record, width: 4, "zip64 end record") == ZipArchive.zip64EndSignature else {
                throw CheckpointError.malformedArchive("no zip64 end record at byte \(record)")
            }
            _ = try bytes.slice(record, 56, "zip64 end record")
            entryCount = try ZipArchive.size(bytes.littleEndian(record + 32, width: 8), "zip64 entry count")
            directorySize = try ZipArchive.size(bytes.littleEndian(record + 40, width: 8), "zip64 directory size")
            directoryOffset = try ZipArchive.size(bytes.littleEndian(record + 48, width: 8), "zip64 directory offset")
        }
        let directory = try bytes.slice(directoryOffset, directorySize, "central directory")
        // Each record takes at least 46 bytes, so a count the directory cannot hold is refused before the loop.
        guard entryCount <= directory.count / 46 else {
            throw CheckpointError.malformedArchive("the directory claims \(entryCount) entries but its \(directory.count) bytes hold at most \(directory.count / 46)")
        }

        var entries: [String: ZipEntry] = [:]
        var names: [String] = []
        var position = 0
        for index in 0..<entryCount {
            let what = "central directory record \(index)"
            guard try directory.checkedLittleEndian(position, width: 4, what) == ZipArchive.centralHeaderSignature else {
                throw CheckpointError.malformedArchive("\(what) has no signature")
            }
            _ = try directory.slice(position, 46, what)
            let flags = UInt16(directory.littleEndian(position + 8, width: 2))
            let method = UInt16(directory.littleEndian(position + 10, width: 2))
            let crc = UInt32(directory.littleEndian(position + 16, width: 4))
            var compressed = directory.littleEndian(position + 20, width: 4)
            var uncompressed = directory.littleEndian(position + 24, width: 4)
            let nameLength = Int(directory.littleEndian(position + 28, width: 2))
            let extraLength = Int(directory.littleEndian(position + 30, width: 2))
            let commentLength = Int(directory.littleEndian(position + 32, width: 2))
            var localOffset = directory.littleEndian(position + 42, width: 4)
            let nameRegion = try directory.slice(position + 46, nameLength, "\(what) name")
            let extra = try directory.slice(position + 46 + nameLength, extraLength, "\(what) extra field")
            _ = try directory.slice(position + 46 + nameLength + extraLength, commentLength, "\(what) comment")
            let name = String(decoding: nameRegion.bytes(0, nameLength), as: UTF8.self)

            // Zip64 extended information: 64-bit values for exactly the fields saturated at 0xFFFFFFFF, in this order.
            var extraPosition = 0
            while extraPosition + 4 <= extra.count {
                let tag = extra.littleEndian(extraPosition, width: 2)
                let length = Int(extra.littleEndian(extraPosition + 2, width: 2))
                let field = try extra.slice(extraPosition + 4, length, "zip64 field of \(name)")
                if tag == 0x0001 {
                    var cursor = 0
                    func next() throws -> UInt64 {
                        defer { cursor += 8 }
                        return try field.checkedLittleEndian(cursor, width: 8, "zip64 field of \(name)")
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next() }
                }
                extraPosition += 4 + length
            }
            let entry = ZipEntry(
                name: name, method: method, flags: flags, crc32: crc,
                compressedSize: try ZipArchive.size(compressed, "compressed size of \(name)"),
                uncompressedSize: try ZipArchive.size(uncompressed, "size of \(name)"),
                localHeaderOffset: try ZipArchive.size(localOffset, "offset of \(name)"))
            if entries.updateValue(entry, forKey: name) == nil { names.append(name) }
            position += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
        self.names = names
    }

    /// The offset of the end-of-central-directory record, searched backwards over the longest possible comment.
    static func findEndRecord(_ bytes: ByteRegion) throws -> Int {
        guard bytes.count >= 22 else {
            throw CheckpointError.truncated("\(bytes.count) bytes cannot hold a zip archive's end record")
        }
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        var candidate = bytes.count - 22
        while candidate >= lowest {
            if bytes.littleEndian(candidate, width: 4) == endSignature {
                let commentLength = Int(bytes.littleEndian(candidate + 20, width: 2))
                if candidate + 22 + commentLength <= bytes.count { return candidate }
            }
            candidate -= 1
        }
        throw CheckpointError.truncated("the zip archive has no end-of-central-directory record")
    }

    /// A size or offset from the file as an Int, refusing values no file on this machine can have.
    static func size(_ value: UInt64, _ what: String) throws -> Int {
        guard value <= UInt64(Int.max / 2) else { throw CheckpointError.malformedArchive("\(what) is \(value)") }
        return Int(value)
    }

    /// The stored bytes of `entry` (still compressed when its method is deflate).
    func rawBytes(of entry: ZipEntry) throws -> ByteRegion {
        let header = entry.localHeaderOffset
        guard try bytes.checkedLittleEndian(header, width: 4, "local header of \(entry.name)") == ZipArchive.localHeaderSignature else {
            throw CheckpointError.malformedArchive("no local header for \(entry.name) at byte \(header)")
        }
        _ = try bytes.slice(header, 30, "local header of \(entry.name)")
        let nameLength = Int(bytes.littleEndian(header + 26, width: 2))
        let extraLength = Int(bytes.littleEndian(header + 28, width: 2))
        // Several directory records pointing at one local header is how overlapping zip bombs reuse one
        // stream; the local header must name the entry the directory says it holds.
        let localName = try bytes.slice(header + 30, nameLength, "local header of \(entry.name)")
        guard localName.bytes(0, nameLength).elementsEqual(entry.name.utf8) else {
            throw CheckpointError.malformedArchive("the local header at byte \(header) does not name \(entry.name)")
        }
        return try bytes.slice(header + 30 + nameLength + extraLength, entry.compressedSize, "data of \(entry.name)")
    }

    /// The contents of `entry`, checked against its CRC-32. A deflated entry draws on the archive's inflate
    /// budget; `limit` caps it further (for entries whose real size is known to be small).
    func contents(of entry: ZipEntry, limit: Int = Int.max) throws -> ByteRegion {
        guard entry.flags & 0x0001 == 0 else { throw CheckpointError.unsupportedArchive("\(entry.name) is encrypted") }
        let raw = try rawBytes(of: entry)
        let data: ByteRegion
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw CheckpointError.corruptEntry(name: entry.name, reason: "stored entry with two different sizes")
            }
            data = raw
        case 8:
            // Refused on the claim alone, before any memory is taken.
            guard entry.uncompressedSize <= limit else {
                throw CheckpointError.corruptEntry(name: entry.name, reason: "claims \(entry.uncompressedSize) bytes; no checkpoint has this entry over \(limit)")
            }
            guard entry.uncompressedSize <= budget.remaining else {
                throw CheckpointError.corruptEntry(
                    name: entry.name,
                    reason: "claims \(entry.uncompressedSize) bytes inflated, past what this \(bytes.count)-byte archive may inflate to (\(budget.limit) bytes in all)")
            }
            data = try ZipArchive.inflate(raw, expected: entry.uncompressedSize, name: entry.name)
            budget.spend(data.count)
        default:
            throw CheckpointError.unsupportedArchive("\(entry.name) uses compression method \(entry.method); only stored and deflate are read")
        }
        let actual = ZipArchive.crc32(data)
        guard actual == entry.crc32 else {
            throw CheckpointError.corruptEntry(name: entry.name, reason: "CRC-32 is \(hex(actual)), the directory says \(hex(entry.crc32))")
        }
        return data
    }

    func contents(of name: String, limit: Int = Int.max) throws -> ByteRegion {
        guard let entry = entries[name] else { throw CheckpointError.missingEntry(name) }
        return try contents(of: entry, limit: limit)
    }

    static func crc32(_ region: ByteRegion) -> UInt32 {
        var crc: uLong = CZlib.crc32(0, nil, 0)
        var done = 0
        // zlib takes 32-bit lengths; feed large entries in chunks.
        while done < region.count {
            let chunk = min(region.count - done, 1 << 30)
            crc = CZlib.crc32(crc, region.pointer.advanced(by: done).assumingMemoryBound(to: Bytef.self), uInt(chunk))
            done += chunk
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// Inflates a raw deflate stream that must produce exactly `expected` bytes.
    ///
    /// The buffer grows with what zlib actually produces (starting near the compressed size), never past
    /// `expected`: a directory that claims far more than the stream holds costs only what the stream holds,
    /// and a stream that holds more than the claim is refused as soon as it passes it.
    static func inflate(_ raw: ByteRegion, expected: Int, name: String) throws -> ByteRegion {
        // Deflate cannot expand by more than about 1032:1, so a larger claim is a damaged header.
        let (bound, overflow) = raw.count.multipliedReportingOverflow(by: 1032)
        guard !overflow, expected <= bound + 1024 else {
            throw CheckpointError.corruptEntry(name: name, reason: "claims \(expected) bytes from \(raw.count) compressed")
        }
        var capacity = min(expected, max(1 << 16, raw.count.multipliedReportingOverflow(by: 2).overflow ? expected : raw.count * 2))
        guard var buffer = malloc(max(capacity, 1)) else {
            throw CheckpointError.corruptEntry(name: name, reason: "cannot allocate \(capacity) bytes to inflate it")
        }
        var owned = true
        defer { if owned { free(buffer) } }
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw CheckpointError.corruptEntry(name: name, reason: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var consumed = 0
        var produced = 0
        var status = Z_OK
        while status == Z_OK {
            if produced == capacity, capacity < expected {
                // Doubling keeps the copies linear in what is produced.
                let grown = min(expected, capacity.multipliedReportingOverflow(by: 2).overflow ? expected : capacity * 2)
                guard let moved = realloc(buffer, grown) else {
                    throw CheckpointError.corruptEntry(name: name, reason: "cannot allocate \(grown) bytes to inflate it")
                }
                buffer = moved
                capacity = grown
            }
            let inputChunk = min(raw.count - consumed, Int(UInt32.max))
            stream.next_in = UnsafeMutablePointer(mutating: (raw.pointer + consumed).assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(inputChunk)
            if produced == expected {
                // Full at the claimed size: one byte of scratch room tells the end of the stream (no output)
                // from a stream that holds more than the directory says.
                var scratch: Bytef = 0
                status = withUnsafeMutablePointer(to: &scratch) { byte in
                    stream.next_out = byte
                    stream.avail_out = 1
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                if stream.avail_out == 0 {
                    throw CheckpointError.corruptEntry(name: name, reason: "inflates past the \(expected) bytes the directory claims")
                }
                let used = inputChunk - Int(stream.avail_in)
                consumed += used
                if status == Z_OK, used == 0 { status = Z_BUF_ERROR }
                continue
            }
            let outputChunk = min(capacity - produced, Int(UInt32.max))
            stream.next_out = (buffer + produced).assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(outputChunk)
            status = CZlib.inflate(&stream, Z_NO_FLUSH)
            consumed += inputChunk - Int(stream.avail_in)
            produced += outputChunk - Int(stream.avail_out)
            if status == Z_OK, inputChunk - Int(stream.avail_in) == 0, outputChunk - Int(stream.avail_out) == 0 {
                status = Z_BUF_ERROR  // no progress: the stream wants more input than the entry has
            }
        }
        guard status == Z_STREAM_END, produced == expected else {
            let reason = status == Z_STREAM_END ? "inflates to \(produced) bytes, not \(expected)" : "deflate data is damaged (zlib status \(status))"
            throw CheckpointError.corruptEntry(name: name, reason: reason)
        }
        owned = false
        return FileBytes(mallocked: buffer, count: expected).whole
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
