// NumPy .npy files: float32 arrays in, float32 arrays out (format version 1.0).
import Foundation
import TensorKernels

/// Errors reading a .npy file.
public enum NPYError: Error, CustomStringConvertible, Equatable {
    case notNPY(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .notNPY(why): return "not a NumPy .npy file: \(why)"
        case let .unsupported(what): return "unsupported .npy content: \(what)"
        }
    }
}

/// Reading and writing NumPy's .npy format for little-endian float32, C-order arrays.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Encodes `tensor` as a version 1.0 .npy file.
    public static func encode(_ tensor: Tensor) -> Data {
        var data = header(shape: tensor.shape)
        tensor.data.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The preamble of a version 1.0 .npy file of little-endian float32 of `shape`, C order: what comes
    /// before the values, for writers that stream them after it.
    public static func header(shape dimensions: [Int]) -> Data {
        let dims = dimensions.map(String.init)
        let shape = dimensions.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        // The whole preamble (magic, version, length, header, newline) is padded to a multiple of 64 bytes.
        let unpadded = magic.count + 2 + 2 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic)
        data.append(contentsOf: [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    /// Decodes a little-endian float32 C-order .npy file.
    public static func decode(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw NPYError.notNPY("bad magic") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NPYError.notNPY("truncated preamble") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw NPYError.unsupported("format version \(major)")
        }
        guard data.count >= headerStart + headerLength else { throw NPYError.notNPY("truncated header") }
        let headerBytes = data.subdata(in: data.startIndex + headerStart..<data.startIndex + headerStart + headerLength)
        guard let header = String(data: headerBytes, encoding: .utf8) else { throw NPYError.notNPY("header is not text") }
        guard header.contains("'<f4'") else { throw NPYError.unsupported("dtype in \(header.trimmingCharacters(in: .whitespacesAndNewlines)); only '<f4'") }
        guard header.contains("'fortran_order': False") else { throw NPYError.unsupported("Fortran order") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw NPYError.notNPY("no shape in header")
        }
        let shape = try header[open.upperBound..<close].split(separator: ",").compactMap { part -> Int? in
            let text = part.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return nil }
            guard let value = Int(text), value >= 0 else { throw NPYError.notNPY("bad dimension '\(text)'") }
            return value
        }
        let count = shape.reduce(1, *)
        let start = headerStart + headerLength
        guard data.count - start == count * 4 else {
            throw NPYError.notNPY("expected \(count * 4) bytes of data, found \(data.count - start)")
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { dst in
            data.copyBytes(to: dst.bindMemory(to: UInt8.self), from: data.startIndex + start..<data.endIndex)
        }
        return Tensor(shape: shape, data: values)
    }

    public static func read(_ url: URL) throws -> Tensor {
        try decode(Data(contentsOf: url))
    }
}
