// The HTTP/1.1 request parser: a pure state machine (bytes in, events out) with no sockets, so it can be
// unit-tested and fuzzed with arbitrary splits of the same bytes.
import Foundation

/// Size limits the parser enforces before anything reaches a handler.
public struct HTTPParserLimits: Sendable {
    /// Request line plus all header lines plus the blank line.
    public var maxHeadBytes = 16 * 1024
    public var maxHeaderCount = 100
    /// A chunk-size line including extensions; also bounds each trailer line.
    public var maxChunkLineBytes = 1024
    public var maxTrailerBytes = 8 * 1024

    public init() {}
}

/// Why a request was refused while parsing; each case maps to the status the client receives.
public enum HTTPParseError: Error, Equatable, CustomStringConvertible {
    case headTooLarge(limit: Int)
    case tooManyHeaders(limit: Int)
    case malformedRequestLine(String)
    case unsupportedVersion(String)
    case malformedHeader(String)
    case missingHost
    case duplicateHost
    case invalidContentLength(String)
    case duplicateContentLength
    case contentLengthWithTransferEncoding
    case unsupportedTransferEncoding(String)
    case invalidChunk(String)
    case bodyTooLarge(limit: Int)
    case unsupportedExpectation(String)
    /// The peer closed the connection in the middle of a request.
    case truncated

    public var status: HTTPStatus {
        switch self {
        case .headTooLarge, .tooManyHeaders: return .headersTooLarge
        case .unsupportedVersion: return .versionNotSupported
        case .unsupportedTransferEncoding: return .notImplemented
        case .bodyTooLarge: return .payloadTooLarge
        case .unsupportedExpectation: return .expectationFailed
        default: return .badRequest
        }
    }

    /// A stable machine-readable code for the JSON error body.
    public var code: String {
        switch self {
        case .headTooLarge, .tooManyHeaders: return "header_too_large"
        case .malformedRequestLine: return "bad_request_line"
        case .unsupportedVersion: return "unsupported_http_version"
        case .malformedHeader: return "bad_header"
        case .missingHost: return "missing_host"
        case .duplicateHost: return "duplicate_host"
        case .invalidContentLength: return "bad_content_length"
        case .duplicateContentLength: return "duplicate_content_length"
        case .contentLengthWithTransferEncoding: return "ambiguous_framing"
        case .unsupportedTransferEncoding: return "unsupported_transfer_encoding"
        case .invalidChunk: return "bad_chunk"
        case .bodyTooLarge: return "body_too_large"
        case .unsupportedExpectation: return "unsupported_expectation"
        case .truncated: return "truncated_request"
        }
    }

    public var description: String {
        switch self {
        case let .headTooLarge(limit): return "request head exceeds \(limit) bytes"
        case let .tooManyHeaders(limit): return "more than \(limit) header fields"
        case let .malformedRequestLine(why): return "malformed request line: \(why)"
        case let .unsupportedVersion(version): return "unsupported HTTP version \(version)"
        case let .malformedHeader(why): return "malformed header: \(why)"
        case .missingHost: return "the Host header is required"
        case .duplicateHost: return "more than one Host header"
        case let .invalidContentLength(value): return "invalid Content-Length '\(value)'"
        case .duplicateContentLength: return "more than one Content-Length header"
        case .contentLengthWithTransferEncoding: return "both Content-Length and Transfer-Encoding are present"
        case let .unsupportedTransferEncoding(value): return "unsupported Transfer-Encoding '\(value)' (only chunked)"
        case let .invalidChunk(why): return "malformed chunked body: \(why)"
        case let .bodyTooLarge(limit): return "request body exceeds \(limit) bytes"
        case let .unsupportedExpectation(value): return "unsupported Expect '\(value)'"
        case .truncated: return "connection closed in the middle of a request"
        }
    }
}

/// One step of parsing. A message is `head`, zero or more `body`, then `end`; `error` is final.
public enum HTTPParserEvent {
    case head(HTTPRequestHead)
    case body([UInt8])
    case end
    case error(HTTPParseError)
}

/// Incremental HTTP/1.1 request parser.
///
/// Feed bytes with `receive`, then pull events with `next()` until it returns nil (more bytes needed). After
/// `.end` the parser stops at the message boundary, keeping any pipelined bytes, until `next()` is called again:
/// the connection decides when to start the next request. After `.error` every call returns the same error.
public struct HTTPRequestParser {
    private enum State {
        case head(scanFrom: Int)
        case bodyStart(HTTPRequestHead.BodyFraming)
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case failed(HTTPParseError)
    }

    public let limits: HTTPParserLimits
    /// The largest body accepted for the current request; set it after `.head`, before pulling the body.
    public var bodyLimit: Int = 1 << 20

    private var state: State = .head(scanFrom: 0)
    private var buffer: [UInt8] = []
    /// Start of unconsumed bytes in `buffer`; consumed bytes are dropped lazily to avoid quadratic copying.
    private var start = 0
    private var bodyBytes = 0

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet turned into events.
    public var bufferedCount: Int { buffer.count - start }

    /// True between messages with nothing buffered: a peer closing now ends the connection cleanly.
    public var isAtMessageBoundary: Bool {
        if case .head = state { return bufferedCount == 0 }
        return false
    }

    /// True while a body is being received (used to pick the right timeout).
    public var isInBody: Bool {
        switch state {
        case .head, .failed: return false
        default: return true
        }
    }

    public mutating func receive<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            if case let .head(scanFrom) = state { state = .head(scanFrom: max(0, scanFrom - start)) }
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The peer closed its side: returns `.error(.truncated)` when a request was in progress.
    public mutating func receiveEnd() -> HTTPParserEvent? {
        if case let .failed(error) = state { return .error(error) }
        if isAtMessageBoundary { return nil }
        return fail(.truncated)
    }

    public mutating func next() -> HTTPParserEvent? {
        switch state {
        case let .failed(error):
            return .error(error)
        case let .head(scanFrom):
            return parseHead(scanFrom: scanFrom)
        case let .bodyStart(framing):
            bodyBytes = 0
            switch framing {
            case .none:
                state = .head(scanFrom: start)
                return .end
            case let .contentLength(length):
                if length > bodyLimit { return fail(.bodyTooLarge(limit: bodyLimit)) }
                state = .fixedBody(remaining: length)
                return next()
            case .chunked:
                state = .chunkSize
                return next()
            }
        case let .fixedBody(remaining):
            if remaining == 0 {
                state = .head(scanFrom: start)
                return .end
            }
            guard bufferedCount > 0 else { return nil }
            let count = min(remaining, bufferedCount)
            state = .fixedBody(remaining: remaining - count)
            return .body(take(count))
        case .chunkSize:
            guard let lineEnd = findCRLF(from: start) else {
                // A line of the full length may sit here with its CR, the LF still to come (found by fuzzing).
                if bufferedCount > limits.maxChunkLineBytes + 1 { return fail(.invalidChunk("chunk size line too long")) }
                return nil
            }
            if lineEnd - start > limits.maxChunkLineBytes { return fail(.invalidChunk("chunk size line too long")) }
            guard let size = Self.chunkSize(buffer[start..<lineEnd]) else {
                return fail(.invalidChunk("bad chunk size line"))
            }
            start = lineEnd + 2
            if size == 0 {
                state = .trailers(bytes: 0)
                return next()
            }
            bodyBytes += size
            if bodyBytes > bodyLimit { return fail(.bodyTooLarge(limit: bodyLimit)) }
            state = .chunkData(remaining: size)
            return next()
        case let .chunkData(remaining):
            guard bufferedCount > 0 else { return nil }
            let count = min(remaining, bufferedCount)
            state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            return .body(take(count))
        case .chunkDataEnd:
            guard bufferedCount >= 2 else { return nil }
            guard buffer[start] == 13 && buffer[start + 1] == 10 else {
                return fail(.invalidChunk("chunk data not followed by CRLF"))
            }
            start += 2
            state = .chunkSize
            return next()
        case let .trailers(bytes):
            guard let lineEnd = findCRLF(from: start) else {
                if bytes + bufferedCount > limits.maxTrailerBytes { return fail(.headTooLarge(limit: limits.maxTrailerBytes)) }
                return nil
            }
            let line = buffer[start..<lineEnd]
            let total = bytes + line.count + 2
            if total > limits.maxTrailerBytes { return fail(.headTooLarge(limit: limits.maxTrailerBytes)) }
            start = lineEnd + 2
            if line.isEmpty {
                state = .head(scanFrom: start)
                return .end
            }
            // Trailer fields are checked for shape and otherwise ignored: nothing downstream uses them.
            if case let .failure(error) = Self.headerField(line) { return fail(error) }
            state = .trailers(bytes: total)
            return next()
        }
    }

    // MARK: - Head

    private mutating func parseHead(scanFrom: Int) -> HTTPParserEvent? {
        // Empty lines before a request line are tolerated (RFC 9112 section 2.2).
        while bufferedCount >= 2 && buffer[start] == 13 && buffer[start + 1] == 10 { start += 2 }
        let from = max(scanFrom, start)
        guard let end = findHeadEnd(from: from) else {
            if bufferedCount > limits.maxHeadBytes { return fail(.headTooLarge(limit: limits.maxHeadBytes)) }
            // Resume the search three bytes back so a terminator split across reads is still found.
            state = .head(scanFrom: max(start, buffer.count - 3))
            return nil
        }
        if end + 4 - start > limits.maxHeadBytes { return fail(.headTooLarge(limit: limits.maxHeadBytes)) }
        let headBytes = buffer[start..<end]
        start = end + 4
        switch Self.parseHead(headBytes, limits: limits) {
        case let .failure(error):
            return fail(error)
        case let .success(head):
            state = .bodyStart(head.framing)
            return .head(head)
        }
    }

    private static func parseHead(_ bytes: ArraySlice<UInt8>, limits: HTTPParserLimits) -> Result<HTTPRequestHead, HTTPParseError> {
        var lines = splitLines(bytes)
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformedRequestLine("expected method, target and version")) }
        guard !parts[0].isEmpty, parts[0].allSatisfy(isTokenByte) else {
            return .failure(.malformedRequestLine("bad method"))
        }
        guard !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 32 && $0 < 127 }) else {
            return .failure(.malformedRequestLine("bad request target"))
        }
        let target = String(decoding: parts[1], as: UTF8.self)
        guard target.hasPrefix("/") || target == "*" else {
            return .failure(.malformedRequestLine("request target must be a path"))
        }
        let version = Array(parts[2])
        let minor: Int
        switch version {
        case Array("HTTP/1.1".utf8): minor = 1
        case Array("HTTP/1.0".utf8): minor = 0
        default:
            let text = String(decoding: version, as: UTF8.self)
            if version.count == 8, text.hasPrefix("HTTP/"), version[5].isDigit, version[6] == 46, version[7].isDigit {
                return .failure(.unsupportedVersion(text))
            }
            return .failure(.malformedRequestLine("bad HTTP version"))
        }
        if lines.count > limits.maxHeaderCount { return .failure(.tooManyHeaders(limit: limits.maxHeaderCount)) }
        var headers = HTTPHeaders()
        for line in lines {
            switch headerField(line) {
            case let .failure(error): return .failure(error)
            case let .success((name, value)): headers.add(name: name, value: value)
            }
        }
        return framing(method: String(decoding: parts[0], as: UTF8.self), target: target, minor: minor, headers: headers)
    }

    /// Applies the framing rules that stop request smuggling: one Host, one valid Content-Length, never both
    /// Content-Length and Transfer-Encoding, and only `chunked` as a transfer coding.
    private static func framing(method: String, target: String, minor: Int, headers: HTTPHeaders) -> Result<HTTPRequestHead, HTTPParseError> {
        let hosts = headers.values("Host")
        if hosts.isEmpty { return .failure(.missingHost) }
        if hosts.count > 1 { return .failure(.duplicateHost) }
        let lengths = headers.values("Content-Length")
        let codings = headers.values("Transfer-Encoding")
        if lengths.count > 1 { return .failure(.duplicateContentLength) }
        if !lengths.isEmpty && !codings.isEmpty { return .failure(.contentLengthWithTransferEncoding) }
        var framing = HTTPRequestHead.BodyFraming.none
        if let length = lengths.first {
            guard !length.isEmpty, length.utf8.count <= 18, length.utf8.allSatisfy({ $0.isDigit }), let value = Int(length) else {
                return .failure(.invalidContentLength(length))
            }
            framing = value == 0 ? .none : .contentLength(value)
        }
        if !codings.isEmpty {
            let joined = codings.joined(separator: ",")
            let list = joined.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard minor == 1, list == ["chunked"] else { return .failure(.unsupportedTransferEncoding(joined)) }
            framing = .chunked
        }
        var expectsContinue = false
        let expectations = headers.values("Expect")
        if expectations.count > 1 { return .failure(.unsupportedExpectation(expectations.joined(separator: ","))) }
        if let expect = expectations.first {
            guard expect.lowercased() == "100-continue" else { return .failure(.unsupportedExpectation(expect)) }
            expectsContinue = minor == 1
        }
        let connection = headers.values("Connection").joined(separator: ",").lowercased()
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let keepAlive = minor == 1 ? !connection.contains("close") : connection.contains("keep-alive")
        return .success(HTTPRequestHead(method: method, target: target, minorVersion: minor, headers: headers,
                                        keepAlive: keepAlive, expectsContinue: expectsContinue, framing: framing))
    }

    private static func headerField(_ line: ArraySlice<UInt8>) -> Result<(String, String), HTTPParseError> {
        guard let first = line.first else { return .failure(.malformedHeader("empty line")) }
        if first == 32 || first == 9 { return .failure(.malformedHeader("obsolete line folding")) }
        guard let colon = line.firstIndex(of: 58) else { return .failure(.malformedHeader("no colon")) }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else {
            return .failure(.malformedHeader("bad field name"))
        }
        var value = line[(colon + 1)...]
        while let byte = value.first, byte == 32 || byte == 9 { value = value.dropFirst() }
        while let byte = value.last, byte == 32 || byte == 9 { value = value.dropLast() }
        // Control characters (CR, LF, NUL, ...) in a value are refused outright rather than stripped.
        guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
            return .failure(.malformedHeader("control character in value of \(String(decoding: name, as: UTF8.self))"))
        }
        return .success((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    /// Parses `1*HEXDIG [ BWS ";" chunk-ext ]`; nil when malformed or too large.
    private static func chunkSize(_ line: ArraySlice<UInt8>) -> Int? {
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = line[index].hexValue {
            digits += 1
            if digits > 15 { return nil }
            size = size * 16 + digit
            index += 1
        }
        guard digits > 0 else { return nil }
        var rest = line[index...]
        while let byte = rest.first, byte == 32 || byte == 9 { rest = rest.dropFirst() }
        if rest.isEmpty { return size }
        guard rest.first == 59, rest.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else { return nil }
        return size
    }

    private static func splitLines(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = bytes.startIndex
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            if bytes[index] == 13 && bytes[index + 1] == 10 {
                lines.append(bytes[lineStart..<index])
                index += 2
                lineStart = index
            } else {
                index += 1
            }
        }
        lines.append(bytes[lineStart..<bytes.endIndex])
        return lines
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    // MARK: - Buffer

    private mutating func fail(_ error: HTTPParseError) -> HTTPParserEvent {
        state = .failed(error)
        return .error(error)
    }

    private mutating func take(_ count: Int) -> [UInt8] {
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        return bytes
    }

    private func findCRLF(from: Int) -> Int? {
        var index = from
        while index + 1 < buffer.count {
            if buffer[index] == 13 {
                if buffer[index + 1] == 10 { return index }
            }
            index += 1
        }
        return nil
    }

    private func findHeadEnd(from: Int) -> Int? {
        var index = from
        while index + 3 < buffer.count {
            if buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
                return index
            }
            index += 1
        }
        return nil
    }
}

extension UInt8 {
    var isDigit: Bool { self >= 48 && self <= 57 }

    var hexValue: Int? {
        switch self {
        case 48...57: return Int(self) - 48
        case 65...70: return Int(self) - 55
        case 97...102: return Int(self) - 87
        default: return nil
        }
    }
}
