// Test fixtures: zip archives and pickles written byte by byte, to build checkpoint variants the golden files lack.
import CZlib
import Foundation

/// How a fixture stores an entry.
enum EntryMethod {
    case stored
    /// Real deflate from zlib (raw stream, no zlib header), as zip method 8.
    case deflated
}

/// Writes a zip archive, optionally with zip64 records for every entry and for the end of the directory.
struct ZipWriter {
    var entries: [(name: String, data: [UInt8], method: EntryMethod)] = []
    var zip64 = false

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        // The bitwise form of CRC-32 (polynomial 0xEDB88320), independent of the reader's zlib call.
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func deflate(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        precondition(deflateInit2_(&stream, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 16)
        var input = bytes
        let written: Int = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = uInt(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = uInt(outputBuffer.count)
                precondition(CZlib.deflate(&stream, Z_FINISH) == Z_STREAM_END)
                return outputBuffer.count - Int(stream.avail_out)
            }
        }
        return Array(output.prefix(written))
    }

    func archive() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for entry in entries {
            let payload = entry.method == .stored ? entry.data : ZipWriter.deflate(entry.data)
            let method: UInt16 = entry.method == .stored ? 0 : 8
            let crc = ZipWriter.crc32(entry.data)
            let offset = out.count
            let name = Array(entry.name.utf8)
            let saturated: UInt32 = 0xFFFF_FFFF

            out.le(UInt32(0x0403_4B50)); out.le(UInt16(45)); out.le(UInt16(0)); out.le(method)
            out.le(UInt16(0)); out.le(UInt16(0)); out.le(crc)
            out.le(zip64 ? saturated : UInt32(payload.count)); out.le(zip64 ? saturated : UInt32(entry.data.count))
            out.le(UInt16(name.count)); out.le(UInt16(zip64 ? 20 : 0))
            out += name
            if zip64 { out.le(UInt16(1)); out.le(UInt16(16)); out.le(UInt64(entry.data.count)); out.le(UInt64(payload.count)) }
            out += payload

            central.le(UInt32(0x0201_4B50)); central.le(UInt16(45)); central.le(UInt16(45)); central.le(UInt16(0)); central.le(method)
            central.le(UInt16(0)); central.le(UInt16(0)); central.le(crc)
            central.le(zip64 ? saturated : UInt32(payload.count)); central.le(zip64 ? saturated : UInt32(entry.data.count))
            central.le(UInt16(name.count)); central.le(UInt16(zip64 ? 28 : 0)); central.le(UInt16(0))
            central.le(UInt16(0)); central.le(UInt16(0)); central.le(UInt32(0))
            central.le(zip64 ? saturated : UInt32(offset))
            central += name
            if zip64 {
                central.le(UInt16(1)); central.le(UInt16(24))
                central.le(UInt64(entry.data.count)); central.le(UInt64(payload.count)); central.le(UInt64(offset))
            }
        }
        let directoryOffset = out.count
        out += central
        if zip64 {
            let recordOffset = out.count
            out.le(UInt32(0x0606_4B50)); out.le(UInt64(44)); out.le(UInt16(45)); out.le(UInt16(45))
            out.le(UInt32(0)); out.le(UInt32(0))
            out.le(UInt64(entries.count)); out.le(UInt64(entries.count))
            out.le(UInt64(central.count)); out.le(UInt64(directoryOffset))
            out.le(UInt32(0x0706_4B50)); out.le(UInt32(0)); out.le(UInt64(recordOffset)); out.le(UInt32(1))
        }
        out.le(UInt32(0x0605_4B50)); out.le(UInt16(0)); out.le(UInt16(0))
        out.le(zip64 ? UInt16(0xFFFF) : UInt16(entries.count)); out.le(zip64 ? UInt16(0xFFFF) : UInt16(entries.count))
        out.le(zip64 ? UInt32(0xFFFF_FFFF) : UInt32(central.count)); out.le(zip64 ? UInt32(0xFFFF_FFFF) : UInt32(directoryOffset))
        out.le(UInt16(0))
        return out
    }
}

/// Writes pickle opcodes; `torchTensor` emits the same sequence torch.save does for one tensor.
struct PickleWriter {
    var bytes: [UInt8] = [0x80, 0x02]  // PROTO 2

    init(protocol version: UInt8 = 2) { bytes = [0x80, version] }

    mutating func op(_ code: UInt8) { bytes.append(code) }
    mutating func mark() { op(0x28) }
    mutating func tuple() { op(0x74) }
    mutating func emptyTuple() { op(0x29) }
    mutating func emptyDict() { op(0x7D) }
    mutating func emptyList() { op(0x5D) }
    mutating func setItem() { op(0x73) }
    mutating func setItems() { op(0x75) }
    mutating func reduce() { op(0x52) }
    mutating func build() { op(0x62) }
    mutating func newObj() { op(0x81) }
    mutating func none() { op(0x4E) }
    mutating func bool(_ value: Bool) { op(value ? 0x88 : 0x89) }
    mutating func stop() { op(0x2E) }

    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        op(0x58); bytes.le(UInt32(utf8.count)); bytes += utf8
    }

    mutating func int(_ value: Int) {
        op(0x4A); bytes.le(UInt32(bitPattern: Int32(value)))
    }

    mutating func global(_ module: String, _ name: String) {
        op(0x63); bytes += Array("\(module)\n\(name)\n".utf8)
    }

    /// LONG1 with eight bytes, for values beyond BININT's 32 bits.
    mutating func long(_ value: Int) {
        op(0x8A); bytes.append(8); bytes.le(Int64(value))
    }

    mutating func intTuple(_ values: [Int]) {
        mark(); for value in values { Int32(exactly: value) == nil ? long(value) : int(value) }; tuple()
    }

    /// `_rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())` with the storage as a
    /// persistent id; `view` adds the legacy format's sixth field.
    mutating func torchTensor(storageClass: String = "FloatStorage", key: String, storageSize: Int,
                              offset: Int = 0, shape: [Int], strides: [Int], view: (key: String, offset: Int, size: Int)? = nil) {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        mark(); string("storage"); global("torch", storageClass); string(key); string("cpu"); int(storageSize)
        if let view { mark(); string(view.key); int(view.offset); int(view.size); tuple() }
        tuple()
        op(0x51)  // BINPERSID
        int(offset); intTuple(shape); intTuple(strides); bool(false)
        global("collections", "OrderedDict"); emptyTuple(); reduce()
        tuple()
        reduce()
    }
}

extension Array where Element == UInt8 {
    mutating func le<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension Float {
    var littleEndianBytes: [UInt8] { var out: [UInt8] = []; out.le(bitPattern); return out }
}

/// Float32 values as the little-endian bytes of a storage.
func storageBytes(_ values: [Float]) -> [UInt8] { values.flatMap(\.littleEndianBytes) }
