// NumPy .npy arrays of shape [T, H, W] read one [H, W] frame at a time, from a file or from inside a tar.
import Foundation
import Media

/// A forward-only stream of bytes: a file, or the content of one tar entry.
protocol SequentialBytes: AnyObject {
    /// The next `count` bytes; fewer only where the stream ends.
    func read(_ count: Int) throws -> Data
}

/// A file read forward through a FileHandle, so only what is asked for is in memory.
final class FileBytes: SequentialBytes {
    private let handle: FileHandle
    private let path: String

    init(url: URL) throws {
        path = url.path
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw EvaluationError.unreadable(path: url.path, reason: "cannot open it")
        }
    }

    deinit { try? handle.close() }

    func read(_ count: Int) throws -> Data {
        var data = Data()
        do {
            while data.count < count, let chunk = try handle.read(upToCount: count - data.count), !chunk.isEmpty {
                data.append(chunk)
            }
        } catch {
            throw EvaluationError.unreadable(path: path, reason: error.localizedDescription)
        }
        return data
    }
}

/// The content of the entry a TarReader stands at, read in chunks (a gzipped archive is inflated as it goes).
final class TarEntryBytes: SequentialBytes {
    private let reader: TarReader

    init(reader: TarReader) { self.reader = reader }

    func read(_ count: Int) throws -> Data {
        var data = Data()
        while data.count < count {
            let chunk = try reader.readContentChunk(maxBytes: min(count - data.count, 1 << 20))
            if chunk.isEmpty { break }
            data.append(chunk)
        }
        return data
    }
}

/// A little-endian C-order .npy of shape [T, H, W] whose frames are read in order, each exactly once.
/// Element types: float32 and float64 (disparities; float64 is rounded to float32 as the reference's tensors
/// are), bool and uint8 (masks).
final class NPYFrames {
    /// The element types read here, with their NumPy `descr`.
    enum Element: String {
        case float32 = "<f4", float64 = "<f8", bool = "|b1", uint8 = "|u1"

        var size: Int {
            switch self {
            case .float32: return 4
            case .float64: return 8
            case .bool, .uint8: return 1
            }
        }
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    /// A header is a short dict; anything longer is not one numpy wrote.
    static let maxHeaderBytes = 1 << 16

    /// The file's name, for messages.
    let name: String
    let element: Element
    let frames: Int
    let height: Int
    let width: Int
    /// Frames handed out so far.
    private(set) var framesRead = 0
    private let bytes: SequentialBytes

    /// Reads and checks the header; the data stays unread.
    init(bytes: SequentialBytes, name: String) throws {
        self.bytes = bytes
        self.name = name
        let preamble = [UInt8](try bytes.read(10))
        guard preamble.count == 10, Array(preamble[0..<6]) == Self.magic else {
            throw EvaluationError.badNPY(file: name, reason: "not a NumPy .npy file (bad magic)")
        }
        var headerLength = Int(preamble[8]) | Int(preamble[9]) << 8
        switch preamble[6] {
        case 1:
            break
        case 2, 3:
            let wide = [UInt8](try bytes.read(2))
            guard wide.count == 2 else { throw EvaluationError.badNPY(file: name, reason: "truncated header") }
            headerLength |= Int(wide[0]) << 16 | Int(wide[1]) << 24
        default:
            throw EvaluationError.badNPY(file: name, reason: ".npy format version \(preamble[6]) is not supported")
        }
        guard headerLength <= Self.maxHeaderBytes else {
            throw EvaluationError.badNPY(file: name, reason: "header of \(headerLength) bytes is implausibly long")
        }
        let headerData = try bytes.read(headerLength)
        guard headerData.count == headerLength else { throw EvaluationError.badNPY(file: name, reason: "truncated header") }
        let header = String(decoding: headerData, as: UTF8.self)

        let descr = Self.value(of: "descr", in: header)
        guard let descr, let element = Element(rawValue: descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))) else {
            throw EvaluationError.badNPY(file: name, reason: "element type \(descr ?? "(none)") is not supported; "
                                         + "disparities are little-endian float32 or float64, masks bool or uint8")
        }
        guard Self.value(of: "fortran_order", in: header) == "False" else {
            throw EvaluationError.badNPY(file: name, reason: "Fortran-ordered arrays are not supported")
        }
        guard let shapeText = Self.value(of: "shape", in: header) else {
            throw EvaluationError.badNPY(file: name, reason: "no shape in the header")
        }
        let shape = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "()")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { Int($0) }
        guard shape.count == 3, let frames = shape[0], let height = shape[1], let width = shape[2],
              frames >= 0, height > 0, width > 0 else {
            throw EvaluationError.badNPY(file: name, reason: "shape \(shapeText) is not [T, H, W] frames of disparity")
        }
        guard frames > 0 else { throw EvaluationError.noFrames(source: name) }
        let (_, overflow) = width.multipliedReportingOverflow(by: height * element.size)
        guard !overflow, width * height <= PNG.defaultMaxPixels else {
            throw EvaluationError.badNPY(file: name, reason: "frames of \(width)x\(height) are implausibly large")
        }
        self.element = element
        self.frames = frames
        self.height = height
        self.width = width
    }

    /// The raw text of `key`'s value in a header dict such as `{'descr': '<f4', 'shape': (5, 64, 256), }`.
    static func value(of key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
              let colon = header[keyRange.upperBound...].firstIndex(of: ":") else { return nil }
        let rest = header[header.index(after: colon)...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) ?? rest.endIndex
        return rest[..<end].trimmingCharacters(in: .whitespaces)
    }

    /// The next frame's raw bytes.
    private func nextBytes() throws -> Data {
        precondition(framesRead < frames, "\(name) has only \(frames) frames")
        let expected = width * height * element.size
        let data = try bytes.read(expected)
        guard data.count == expected else {
            throw EvaluationError.badNPY(file: name, reason: "truncated: the data ends inside frame \(framesRead) of \(frames)")
        }
        framesRead += 1
        return data
    }

    /// The next frame as float32 values (float64 rounded). A mask type is refused: it is not a disparity.
    func nextFloats() throws -> [Float] {
        let data: Data
        switch element {
        case .float32, .float64: data = try nextBytes()
        case .bool, .uint8:
            throw EvaluationError.badNPY(file: name, reason: "holds \(element) values, not disparities (float32 or float64)")
        }
        let count = width * height
        return data.withUnsafeBytes { raw in
            if element == .float32 {
                return (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
            }
            return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
        }
    }

    /// The next frame as a mask: every value must be 0 or 1, whatever the element type.
    func nextMask() throws -> [Bool] {
        let data = try nextBytes()
        let count = width * height
        var mask = [Bool](repeating: false, count: count)
        let offending: Double? = data.withUnsafeBytes { raw in
            for index in 0..<count {
                let value: Double
                switch element {
                case .bool, .uint8: value = Double(raw[index])
                case .float32: value = Double(raw.loadUnaligned(fromByteOffset: index * 4, as: Float.self))
                case .float64: value = raw.loadUnaligned(fromByteOffset: index * 8, as: Double.self)
                }
                guard value == 0 || value == 1 else { return value }
                mask[index] = value == 1
            }
            return nil
        }
        if let offending { throw EvaluationError.maskNotBoolean(file: name, value: offending) }
        return mask
    }
}
