// Writing a state dict of float32 tensors as torch.save does (the zip format of PyTorch 1.6 and later).
import CZlib
import Foundation
import TensorKernels

/// Writes float32 tensors to a `.pth` file that `StateDict.load` and `torch.load` both read.
///
/// The layout is torch.save's: a zip archive (entries stored, not compressed) holding `<archive>/data.pkl`,
/// a protocol-2 pickle of an `OrderedDict` from name to `torch._utils._rebuild_tensor_v2(storage, 0, shape,
/// stride, False, OrderedDict())`, and one entry `<archive>/data/<k>` per tensor with its little-endian
/// values, padded so that each begins on a 64-byte boundary as torch.save's do. The file is streamed to
/// disk, tensor by tensor, and written under a temporary name first, so a reader never sees half of it.
public enum CheckpointWriter {
    /// Where each entry's payload starts in the file: a multiple of this (torch.save's alignment).
    static let alignment = 64
    /// The folder inside the archive; torch.save names it after the file, torch.load accepts any.
    static let archiveFolder = "archive"

    /// Writes `tensors` to `url` in the given order, replacing any file there.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], to url: URL) throws {
        var names = Set<String>()
        for entry in tensors where !names.insert(entry.name).inserted {
            throw CheckpointError.duplicateName(entry.name)
        }
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            var zip = ZipStream(handle: handle)
            let folder = archiveFolder + "/"
            try zip.add(folder + "data.pkl", pickle(tensors))
            try zip.add(folder + "byteorder", Array("little".utf8))
            for (index, entry) in tensors.enumerated() {
                try zip.add(folder + "data/\(index)", littleEndianBytes(entry.tensor.data))
            }
            try zip.add(folder + "version", Array("3\n".utf8))
            try zip.finish()
            try handle.close()
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: temporary, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// The pickle of the state dict; storage `k` is the `k`-th tensor, each a contiguous row-major block.
    static func pickle(_ tensors: [(name: String, tensor: Tensor)]) -> [UInt8] {
        var p = PickleBytes()
        p.global("collections", "OrderedDict"); p.op(0x29); p.op(0x52)  // OrderedDict(): EMPTY_TUPLE, REDUCE
        for (index, entry) in tensors.enumerated() {
            p.string(entry.name)
            p.global("torch._utils", "_rebuild_tensor_v2")
            p.op(0x28)  // MARK: the arguments
            p.op(0x28)  // MARK: the persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
            p.string("storage"); p.global("torch", "FloatStorage"); p.string(String(index)); p.string("cpu")
            p.int(entry.tensor.count)
            p.op(0x74)  // TUPLE
            p.op(0x51)  // BINPERSID
            p.int(0)
            p.intTuple(entry.tensor.shape)
            p.intTuple(contiguousStrides(entry.tensor.shape))
            p.op(0x89)  // NEWFALSE: requires_grad
            p.global("collections", "OrderedDict"); p.op(0x29); p.op(0x52)  // backward hooks: OrderedDict()
            p.op(0x74)  // TUPLE
            p.op(0x52)  // REDUCE
            p.op(0x73)  // SETITEM
        }
        p.op(0x2E)  // STOP
        return p.bytes
    }

    /// Row-major strides of `shape`, in elements.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in shape.indices.reversed() {
            strides[axis] = step
            step *= shape[axis]
        }
        return strides
    }

    static func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, value) in values.enumerated() {
                // i * 4 + 4 <= values.count * 4 = raw.count.
                raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        return bytes
    }
}

/// The pickle opcodes the writer needs (protocol 2).
struct PickleBytes {
    var bytes: [UInt8] = [0x80, 0x02]  // PROTO 2

    mutating func op(_ code: UInt8) { bytes.append(code) }

    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        op(0x58); bytes.appendLittleEndian(UInt32(utf8.count)); bytes += utf8  // BINUNICODE
    }

    mutating func int(_ value: Int) {
        if let small = UInt8(exactly: value) {
            op(0x4B); bytes.append(small)  // BININT1
        } else if let medium = Int32(exactly: value) {
            op(0x4A); bytes.appendLittleEndian(UInt32(bitPattern: medium))  // BININT
        } else {
            op(0x8A); bytes.append(8); bytes.appendLittleEndian(UInt64(bitPattern: Int64(value)))  // LONG1
        }
    }

    mutating func intTuple(_ values: [Int]) {
        op(0x28); for value in values { int(value) }; op(0x74)  // MARK ... TUPLE
    }

    mutating func global(_ module: String, _ name: String) {
        op(0x63); bytes += Array("\(module)\n\(name)\n".utf8)  // GLOBAL
    }
}

/// A zip archive of stored entries written front to back: local headers and payloads as they come, the
/// central directory at the end. Offsets and sizes must fit 32 bits (no zip64): 4 GiB is far beyond what
/// is written here.
struct ZipStream {
    let handle: FileHandle
    private var offset = 0
    private var directory: [UInt8] = []
    private var count = 0

    init(handle: FileHandle) { self.handle = handle }

    mutating func add(_ name: String, _ payload: [UInt8]) throws {
        let nameBytes = Array(name.utf8)
        // The extra field pads the local header so that the payload starts on an aligned offset.
        let unpadded = offset + 30 + nameBytes.count + 4  // header, name, the padding field's tag and length
        let padding = (CheckpointWriter.alignment - unpadded % CheckpointWriter.alignment) % CheckpointWriter.alignment
        let extraLength = 4 + padding
        guard let localOffset = UInt32(exactly: offset), let size = UInt32(exactly: payload.count),
              UInt32(exactly: unpadded + padding + payload.count) != nil, count < 0xFFFF
        else { throw CheckpointError.unsupportedFormat("the checkpoint would exceed 4 GiB or 65535 entries, which needs zip64") }
        let crc = payload.withUnsafeBufferPointer { UInt32(CZlib.crc32(0, $0.baseAddress, uInt($0.count))) }

        var local: [UInt8] = []
        local.appendLittleEndian(UInt32(0x0403_4B50))
        local.appendLittleEndian(UInt16(20)); local.appendLittleEndian(UInt16(0)); local.appendLittleEndian(UInt16(0))  // version, flags, stored
        local.appendLittleEndian(UInt16(0)); local.appendLittleEndian(UInt16(0))  // time, date
        local.appendLittleEndian(crc); local.appendLittleEndian(size); local.appendLittleEndian(size)
        local.appendLittleEndian(UInt16(nameBytes.count)); local.appendLittleEndian(UInt16(extraLength))
        local += nameBytes
        local.appendLittleEndian(UInt16(0x4246)); local.appendLittleEndian(UInt16(padding))  // "FB": torch.save's padding tag
        local += [UInt8](repeating: 0x5A, count: padding)
        try handle.write(contentsOf: local)
        try handle.write(contentsOf: payload)

        directory.appendLittleEndian(UInt32(0x0201_4B50))
        directory.appendLittleEndian(UInt16(20)); directory.appendLittleEndian(UInt16(20))  // made by, needed
        directory.appendLittleEndian(UInt16(0)); directory.appendLittleEndian(UInt16(0))  // flags, stored
        directory.appendLittleEndian(UInt16(0)); directory.appendLittleEndian(UInt16(0))  // time, date
        directory.appendLittleEndian(crc); directory.appendLittleEndian(size); directory.appendLittleEndian(size)
        directory.appendLittleEndian(UInt16(nameBytes.count))
        directory.appendLittleEndian(UInt16(0)); directory.appendLittleEndian(UInt16(0))  // extra, comment
        directory.appendLittleEndian(UInt16(0)); directory.appendLittleEndian(UInt16(0))  // disk, internal attributes
        directory.appendLittleEndian(UInt32(0))  // external attributes
        directory.appendLittleEndian(localOffset)
        directory += nameBytes
        offset += local.count + payload.count
        count += 1
    }

    mutating func finish() throws {
        guard let directoryOffset = UInt32(exactly: offset), let directorySize = UInt32(exactly: directory.count) else {
            throw CheckpointError.unsupportedFormat("the checkpoint would exceed 4 GiB, which needs zip64")
        }
        var end: [UInt8] = []
        end.appendLittleEndian(UInt32(0x0605_4B50))
        end.appendLittleEndian(UInt16(0)); end.appendLittleEndian(UInt16(0))  // this disk, the directory's disk
        end.appendLittleEndian(UInt16(count)); end.appendLittleEndian(UInt16(count))
        end.appendLittleEndian(directorySize); end.appendLittleEndian(directoryOffset)
        end.appendLittleEndian(UInt16(0))  // comment length
        try handle.write(contentsOf: directory + end)
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
