// The bytes of a checkpoint: a read-only memory map of the file, or a buffer the reader owns.
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Immutable bytes that outlive every tensor cut from them.
///
/// Checkpoints are mapped rather than read so that the weights exist once in memory: as file pages that
/// the kernel can drop and re-read, not as a heap copy beside the converted float arrays.
final class FileBytes: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int
    private let storage: Storage

    /// Who releases `base`, and how.
    private enum Storage {
        case mapped(length: Int)
        /// From `UnsafeMutableRawPointer.allocate`.
        case allocated
        /// From `malloc`/`realloc` (an inflated entry, grown as zlib produced it).
        case malloced
    }

    /// Maps the file at `url` read-only.
    init(mapping url: URL) throws {
        let path = url.path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CheckpointError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw CheckpointError.io(path: path, reason: String(cString: strerror(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw CheckpointError.io(path: path, reason: "not a regular file") }
        let size = Int(status.st_size)
        if size == 0 {
            // mmap refuses empty lengths; an empty file is simply zero bytes.
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16))
            count = 0
            storage = .allocated
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw CheckpointError.io(path: path, reason: "cannot map the file: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(address)
        count = size
        storage = .mapped(length: size)
    }

    /// Copies `bytes` into a buffer this object owns.
    init<Bytes: Collection>(copying bytes: Bytes) where Bytes.Element == UInt8 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
        base = UnsafeRawPointer(buffer.baseAddress!)
        count = bytes.count
        storage = .allocated
    }

    /// Takes ownership of `buffer` (from `malloc` or `realloc`), holding `count` bytes.
    init(mallocked buffer: UnsafeMutableRawPointer, count: Int) {
        base = UnsafeRawPointer(buffer)
        self.count = count
        storage = .malloced
    }

    deinit {
        switch storage {
        case let .mapped(length): munmap(UnsafeMutableRawPointer(mutating: base), length)
        case .allocated: UnsafeMutableRawPointer(mutating: base).deallocate()
        case .malloced: free(UnsafeMutableRawPointer(mutating: base))
        }
    }

    var whole: ByteRegion { ByteRegion(owner: self, offset: 0, count: count) }
}

/// A bounds-checked window into `FileBytes`; every read names what it was reading when it runs out.
struct ByteRegion: @unchecked Sendable {
    let owner: FileBytes
    let offset: Int
    let count: Int

    var pointer: UnsafeRawPointer { owner.base + offset }

    /// The sub-window `[start, start + length)`, or a truncation error naming `what`.
    func slice(_ start: Int, _ length: Int, _ what: @autoclosure () -> String) throws -> ByteRegion {
        guard start >= 0, length >= 0, start <= count, length <= count - start else {
            throw CheckpointError.truncated("\(what()) (needs bytes \(start)..<\(start &+ length) of \(count))")
        }
        return ByteRegion(owner: owner, offset: offset + start, count: length)
    }

    func uint8(_ at: Int) -> UInt8 { pointer.load(fromByteOffset: at, as: UInt8.self) }

    /// Little-endian unsigned integer of `width` bytes at `at`; the caller has checked the bounds.
    func littleEndian(_ at: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in (0..<width).reversed() { value = value << 8 | UInt64(uint8(at + index)) }
        return value
    }

    func checkedLittleEndian(_ at: Int, width: Int, _ what: @autoclosure () -> String) throws -> UInt64 {
        _ = try slice(at, width, what())
        return littleEndian(at, width: width)
    }

    func bytes(_ start: Int, _ length: Int) -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: pointer + start, count: length))
    }

    func hasPrefix(_ prefix: [UInt8]) -> Bool {
        count >= prefix.count && bytes(0, prefix.count) == prefix
    }
}
