// Streaming multipart/form-data (RFC 7578) parser: a pure state machine (bytes in, part events out) that never
// holds more than a part's headers and one delimiter's worth of bytes, so uploads of any size stream through.
import Foundation

/// Limits on the parts of one form.
public struct MultipartLimits: Sendable {
    public var maxPartHeaderBytes = 8 * 1024
    public var maxParts = 32

    public init() {}
}

/// Why a multipart body was refused.
public enum MultipartError: Error, Equatable, CustomStringConvertible {
    case notMultipart(String)
    case badBoundary(String)
    case malformedDelimiter
    case partHeadersTooLarge(limit: Int)
    case malformedPartHeaders(String)
    case tooManyParts(limit: Int)
    case truncated

    public var description: String {
        switch self {
        case let .notMultipart(type): return "expected multipart/form-data, got '\(type)'"
        case let .badBoundary(why): return "bad multipart boundary: \(why)"
        case .malformedDelimiter: return "malformed multipart delimiter line"
        case let .partHeadersTooLarge(limit): return "multipart part headers exceed \(limit) bytes"
        case let .malformedPartHeaders(why): return "malformed multipart part headers: \(why)"
        case let .tooManyParts(limit): return "more than \(limit) multipart parts"
        case .truncated: return "multipart body ended before its closing delimiter"
        }
    }
}

/// The headers of one form part.
public struct MultipartPartHead: Equatable, Sendable {
    /// The form field name from `Content-Disposition: form-data; name="..."`.
    public var name: String
    /// Present for file parts.
    public var filename: String?
    public var contentType: String?
}

/// One step of parsing: each part is `partBegin`, zero or more `partData`, `partEnd`; the form ends with `end`.
public enum MultipartEvent: Equatable {
    case partBegin(MultipartPartHead)
    case partData([UInt8])
    case partEnd
    case end
    case error(MultipartError)
}

/// Incremental multipart/form-data parser: `receive` bytes, pull events with `next()` until nil.
public struct MultipartParser {
    private enum State {
        case preamble
        case afterDelimiter
        case partHeaders
        case partBody
        case epilogue
        case failed(MultipartError)
    }

    public let limits: MultipartLimits
    /// `CRLF--boundary`: what ends every part's data.
    private let delimiter: [UInt8]
    private var state: State = .preamble
    private var buffer: [UInt8]
    private var start = 0
    private var partCount = 0

    /// The boundary parameter of a `multipart/form-data` content type.
    public static func boundary(contentType: String) throws -> String {
        let pieces = splitParameters(contentType)
        guard let type = pieces.first, type.lowercased() == "multipart/form-data" else {
            throw MultipartError.notMultipart(contentType)
        }
        guard let boundary = pieces.dropFirst().compactMap(parameter).first(where: { $0.key == "boundary" })?.value else {
            throw MultipartError.badBoundary("no boundary parameter")
        }
        return boundary
    }

    public init(boundary: String, limits: MultipartLimits = MultipartLimits()) throws {
        let bytes = Array(boundary.utf8)
        guard (1...70).contains(bytes.count) else { throw MultipartError.badBoundary("length must be 1 to 70") }
        guard bytes.allSatisfy({ $0 >= 32 && $0 < 127 }), bytes.last != 32 else {
            throw MultipartError.badBoundary("invalid characters")
        }
        self.limits = limits
        delimiter = Array("\r\n--".utf8) + bytes
        // The first delimiter may open the body without a preceding CRLF; prefixing one makes every delimiter alike.
        buffer = [13, 10]
    }

    public mutating func receive<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The body ended: an error unless the closing delimiter was seen.
    public mutating func receiveEnd() -> MultipartEvent? {
        switch state {
        case .epilogue: return nil
        case let .failed(error): return .error(error)
        default: return fail(.truncated)
        }
    }

    /// True once the closing delimiter has been parsed.
    public var isComplete: Bool {
        if case .epilogue = state { return true }
        return false
    }

    public mutating func next() -> MultipartEvent? {
        switch state {
        case let .failed(error):
            return .error(error)
        case .epilogue:
            start = buffer.count
            return nil
        case .preamble:
            if let found = find(delimiter, from: start) {
                start = found + delimiter.count
                state = .afterDelimiter
                return next()
            }
            start = max(start, buffer.count - (delimiter.count - 1))
            return nil
        case .afterDelimiter:
            guard buffer.count - start >= 2 else { return nil }
            if buffer[start] == 45 && buffer[start + 1] == 45 {
                start += 2
                state = .epilogue
                return .end
            }
            // Transport padding (spaces, tabs) may sit between the boundary and its CRLF.
            guard let lineEnd = find([13, 10], from: start) else {
                if buffer.count - start > 256 { return fail(.malformedDelimiter) }
                return nil
            }
            guard buffer[start..<lineEnd].allSatisfy({ $0 == 32 || $0 == 9 }) else { return fail(.malformedDelimiter) }
            start = lineEnd + 2
            partCount += 1
            if partCount > limits.maxParts { return fail(.tooManyParts(limit: limits.maxParts)) }
            state = .partHeaders
            return next()
        case .partHeaders:
            guard buffer.count - start >= 2 else { return nil }
            if buffer[start] == 13 && buffer[start + 1] == 10 {
                return fail(.malformedPartHeaders("no Content-Disposition"))
            }
            guard let end = find([13, 10, 13, 10], from: start) else {
                if buffer.count - start > limits.maxPartHeaderBytes {
                    return fail(.partHeadersTooLarge(limit: limits.maxPartHeaderBytes))
                }
                return nil
            }
            if end - start > limits.maxPartHeaderBytes { return fail(.partHeadersTooLarge(limit: limits.maxPartHeaderBytes)) }
            let headerBytes = buffer[start..<end]
            start = end + 4
            switch Self.partHead(headerBytes) {
            case let .failure(error): return fail(error)
            case let .success(head):
                state = .partBody
                return .partBegin(head)
            }
        case .partBody:
            if let found = find(delimiter, from: start) {
                if found > start { return .partData(take(found - start)) }
                start += delimiter.count
                state = .afterDelimiter
                return .partEnd
            }
            // Hold back what could be the start of a delimiter split across reads.
            let safe = buffer.count - start - (delimiter.count - 1)
            return safe > 0 ? .partData(take(safe)) : nil
        }
    }

    // MARK: - Part headers

    private static func partHead(_ bytes: ArraySlice<UInt8>) -> Result<MultipartPartHead, MultipartError> {
        let text = String(decoding: bytes, as: UTF8.self)
        var disposition: String?
        var contentType: String?
        for line in text.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .failure(.malformedPartHeaders("header line without a name"))
            }
            guard line.unicodeScalars.allSatisfy({ $0 == "\t" || $0.value >= 32 }) else {
                return .failure(.malformedPartHeaders("control character in a header"))
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-disposition":
                if disposition != nil { return .failure(.malformedPartHeaders("two Content-Disposition headers")) }
                disposition = value
            case "content-type":
                contentType = value
            default:
                break
            }
        }
        guard let disposition else { return .failure(.malformedPartHeaders("no Content-Disposition")) }
        let pieces = splitParameters(disposition)
        guard pieces.first?.lowercased() == "form-data" else {
            return .failure(.malformedPartHeaders("Content-Disposition is not form-data"))
        }
        var name: String?
        var filename: String?
        for piece in pieces.dropFirst() {
            guard let (key, value) = parameter(piece) else {
                return .failure(.malformedPartHeaders("bad Content-Disposition parameter"))
            }
            if key == "name" { name = value }
            if key == "filename" { filename = value }
        }
        guard let name, !name.isEmpty else { return .failure(.malformedPartHeaders("part without a name")) }
        return .success(MultipartPartHead(name: name, filename: filename, contentType: contentType))
    }

    /// Splits `a; b=1; c="x;y"` at semicolons outside quotes.
    static func splitParameters(_ value: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in value {
            if escaped {
                current.append(character)
                escaped = false
            } else if quoted && character == "\\" {
                current.append(character)
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
                current.append(character)
            } else if character == ";" && !quoted {
                pieces.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
        }
        pieces.append(current.trimmingCharacters(in: .whitespaces))
        return pieces
    }

    /// `key=value` or `key="quoted value"`, the key lowercased; nil when malformed.
    static func parameter(_ piece: String) -> (key: String, value: String)? {
        guard let equals = piece.firstIndex(of: "=") else { return nil }
        let key = piece[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
        var value = piece[piece.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else { return nil }
        if value.hasPrefix("\"") {
            guard value.count >= 2, value.hasSuffix("\"") else { return nil }
            value = String(value.dropFirst().dropLast())
            var unescaped = ""
            var escaped = false
            for character in value {
                if escaped || character != "\\" {
                    unescaped.append(character)
                    escaped = false
                } else {
                    escaped = true
                }
            }
            value = unescaped
        }
        return (key, value)
    }

    // MARK: - Buffer

    private mutating func fail(_ error: MultipartError) -> MultipartEvent {
        state = .failed(error)
        return .error(error)
    }

    private mutating func take(_ count: Int) -> [UInt8] {
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        return bytes
    }

    /// First index of `pattern` at or after `from`; scans for the pattern's first byte, then compares.
    private func find(_ pattern: [UInt8], from: Int) -> Int? {
        buffer.withUnsafeBufferPointer { haystack in
            pattern.withUnsafeBufferPointer { needle in
                let last = haystack.count - needle.count
                guard from <= last else { return nil }
                let first = needle[0]
                var index = from
                while index <= last {
                    // Unchecked reads stay inside [from, last + needle.count) by the loop bounds.
                    if haystack[index] == first {
                        var matched = 1
                        while matched < needle.count && haystack[index + matched] == needle[matched] { matched += 1 }
                        if matched == needle.count { return index }
                    }
                    index += 1
                }
                return nil
            }
        }
    }
}
