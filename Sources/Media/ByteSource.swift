// Forward-only byte streams for the tar reader: a file read in chunks, bytes in memory, or gzip inflated on the fly.
import CZlib
import Foundation

/// A forward-only source of bytes.
protocol ByteSource: AnyObject {
    /// Up to `maxCount` (> 0) further bytes; an empty array only at the end of the stream.
    func read(upTo maxCount: Int) throws -> [UInt8]
}

/// Reads a file through a FileHandle, one chunk per call, so an archive is never held in memory whole.
final class FileByteSource: ByteSource {
    private let handle: FileHandle
    private let path: String

    init(url: URL) throws {
        path = url.path
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw MediaError.unreadable(path: url.path, reason: error.localizedDescription)
        }
    }

    deinit { try? handle.close() }

    func read(upTo maxCount: Int) throws -> [UInt8] {
        do {
            guard let chunk = try handle.read(upToCount: maxCount) else { return [] }
            return [UInt8](chunk)
        } catch {
            throw MediaError.unreadable(path: path, reason: error.localizedDescription)
        }
    }
}

/// Serves bytes already in memory (an upload held by the server, a test archive).
final class DataByteSource: ByteSource {
    private let data: Data
    private var position: Int

    init(_ data: Data) {
        self.data = data
        position = data.startIndex
    }

    func read(upTo maxCount: Int) throws -> [UInt8] {
        let end = min(data.endIndex, position + maxCount)
        defer { position = end }
        return [UInt8](data[position..<end])
    }
}

/// Inflates a gzip stream (several concatenated members allowed) as it is read, through zlib.
///
/// What comes out is counted as it is produced: past `maxOutputBytes`, or past `maxRatio` times the compressed
/// bytes taken in once `ratioFloor` bytes have come out, the next read throws instead of inflating further.
final class GzipByteSource: ByteSource {
    private let upstream: ByteSource
    private let archive: String
    private var stream = z_stream()
    var maxOutputBytes = Int.max
    var maxRatio = Int.max
    /// Small archives (a few frames and their tar headers) may compress well; ratios are judged past this.
    var ratioFloor = 16 << 20
    /// Bytes inflated and compressed bytes consumed, over every member.
    private(set) var produced = 0
    private(set) var consumed = 0
    // zlib keeps a pointer to its pending input between calls, so the input lives in memory this object owns.
    private let input: UnsafeMutablePointer<UInt8>
    private let inputCapacity = 1 << 16
    private var finished = false

    init(upstream: ByteSource, archive: String) throws {
        self.upstream = upstream
        self.archive = archive
        input = .allocate(capacity: inputCapacity)
        // windowBits 15 + 16: expect a gzip wrapper (header, CRC-32 and length checked by zlib).
        let status = inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            input.deallocate()
            throw MediaError.badGzip(archive: archive, reason: "zlib could not start (status \(status))")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Moves fresh compressed bytes into the input buffer when zlib has used up the last ones.
    /// Returns false at the end of the upstream.
    private func refill() throws -> Bool {
        if stream.avail_in > 0 { return true }
        let chunk = try upstream.read(upTo: inputCapacity)
        if chunk.isEmpty { return false }
        chunk.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: chunk.count) }
        stream.next_in = input
        stream.avail_in = UInt32(chunk.count)
        return true
    }

    func read(upTo maxCount: Int) throws -> [UInt8] {
        if produced > maxOutputBytes { throw MediaError.inflatedTooLarge(archive: archive, limit: maxOutputBytes) }
        if produced > ratioFloor, produced / max(consumed, 1) >= maxRatio {
            throw MediaError.compressionRatioTooHigh(archive: archive, inflated: produced, compressed: consumed, limit: maxRatio)
        }
        // Never more than one byte past the limit, so passing it is seen without inflating further.
        let maxCount = min(maxCount, maxOutputBytes == Int.max ? Int.max : max(1, maxOutputBytes - produced + 1))
        var output = [UInt8](repeating: 0, count: maxCount)
        var produced = 0
        defer { self.produced += produced }
        while produced == 0 && !finished {
            guard try refill() else {
                throw MediaError.badGzip(archive: archive, reason: "the compressed stream is truncated")
            }
            let status: Int32 = output.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress! + produced
                stream.avail_out = UInt32(maxCount - produced)
                let inputBefore = Int(stream.avail_in)
                let status = inflate(&stream, Z_NO_FLUSH)
                consumed += inputBefore - Int(stream.avail_in)
                produced = maxCount - Int(stream.avail_out)
                return status
            }
            switch status {
            case Z_OK, Z_BUF_ERROR:
                continue
            case Z_STREAM_END:
                // Another member may follow (as `cat a.gz b.gz` makes); anything else after the end is ignored.
                if try refill(), stream.next_in.pointee == 0x1F {
                    let pending = (stream.next_in, stream.avail_in)
                    inflateReset(&stream)
                    (stream.next_in, stream.avail_in) = pending
                } else {
                    finished = true
                }
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw MediaError.badGzip(archive: archive, reason: reason)
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}

/// Buffers a ByteSource so the tar reader can ask for exact counts and skip, and knows its offset.
final class ByteReader {
    private let source: ByteSource
    private var buffer: [UInt8] = []
    private var position = 0
    /// Bytes handed out or skipped so far.
    private(set) var offset = 0
    private let chunkSize = 1 << 16

    init(_ source: ByteSource) { self.source = source }

    /// Makes at least `count` bytes available unless the stream ends first; returns how many are.
    private func fill(_ count: Int) throws -> Int {
        while buffer.count - position < count {
            let chunk = try source.read(upTo: max(chunkSize, count - (buffer.count - position)))
            if chunk.isEmpty { break }
            if position > 0 {
                buffer.removeSubrange(0..<position)
                position = 0
            }
            buffer += chunk
        }
        return min(count, buffer.count - position)
    }

    /// The next bytes without consuming them (fewer at the end of the stream).
    func peek(_ count: Int) throws -> [UInt8] {
        let available = try fill(count)
        return Array(buffer[position..<position + available])
    }

    /// Up to `count` bytes; fewer only at the end of the stream.
    func read(_ count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(min(count, 1 << 24))  // `count` comes from a header: trust it only so far
        while out.count < count {
            let available = try fill(min(count - out.count, chunkSize))
            if available == 0 { break }
            out += buffer[position..<position + available]
            position += available
            offset += available
        }
        return out
    }

    /// Skips up to `count` bytes; returns how many were skipped (fewer only at the end of the stream).
    func skip(_ count: Int) throws -> Int {
        var skipped = 0
        while skipped < count {
            let available = try fill(min(count - skipped, chunkSize))
            if available == 0 { break }
            position += available
            offset += available
            skipped += available
        }
        return skipped
    }
}

/// Gzip compression of a whole buffer; the tests use it to build .tar.gz inputs.
enum GzipCompression {
    static func compress(_ data: Data, level: Int32 = Z_DEFAULT_COMPRESSION) throws -> Data {
        var stream = z_stream()
        // windowBits 15 + 16 writes the gzip wrapper instead of zlib's.
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw MediaError.badGzip(archive: "(memory)", reason: "zlib could not start compressing")
        }
        defer { deflateEnd(&stream) }
        var input = [UInt8](data)
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 64)
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else {
            throw MediaError.badGzip(archive: "(memory)", reason: "deflate ended with status \(status)")
        }
        return Data(output.prefix(Int(stream.total_out)))
    }
}
