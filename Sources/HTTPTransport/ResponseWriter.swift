// Serialises a response onto a socket: status line, headers with a correct length, and the body, either
// whole (Content-Length) or streamed as chunks.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes one response to a connection.
struct ResponseWriter {
    let fd: Int32
    let timeout: Double

    /// Writes `response`. A streamed body uses chunked framing on HTTP/1.1; an HTTP/1.0 client gets it
    /// delimited by closing the connection, so `keepAlive` is ignored then. `omitBody` answers HEAD: the
    /// headers a GET would get, no body.
    func write(_ response: HTTPResponse, minorVersion: Int, keepAlive: Bool, omitBody: Bool = false) throws {
        var head = "HTTP/1.1 \(response.status.code) \(response.status.reason)\r\nDate: \(Self.httpDate())\r\n"
        for (name, value) in response.headers.fields where !Self.framingHeaders.contains(where: { HTTPHeaders.sameName($0, name) }) {
            head += "\(name): \(value)\r\n"
        }
        switch response.body {
        case let .bytes(bytes):
            head += "Content-Length: \(bytes.count)\r\n"
            head += keepAlive ? (minorVersion == 0 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n"
            head += "\r\n"
            if omitBody {
                try Socket.writeAll(fd, Array(head.utf8), timeout: timeout)
                return
            }
            // One write for small responses saves a packet and a syscall per request.
            if bytes.count <= 16 * 1024 {
                try Socket.writeAll(fd, Array(head.utf8) + bytes, timeout: timeout)
            } else {
                try Socket.writeAll(fd, Array(head.utf8), timeout: timeout)
                try Socket.writeAll(fd, bytes, timeout: timeout)
            }
        case let .sized(length, _) where omitBody:
            head += "Content-Length: \(length)\r\n" + (keepAlive ? "\r\n" : "Connection: close\r\n\r\n")
            try Socket.writeAll(fd, Array(head.utf8), timeout: timeout)
        case let .sized(length, produce):
            head += "Content-Length: \(length)\r\n"
            head += keepAlive ? (minorVersion == 0 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n"
            try Socket.writeAll(fd, Array((head + "\r\n").utf8), timeout: timeout)
            let writer = CountingBodyWriter(fd: fd, timeout: timeout, limit: length)
            try produce(writer)
            // A short body cannot be told apart from a slow one on the wire: the connection must end.
            guard writer.written == length else { throw SocketError.closed }
        case .stream where omitBody:
            head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
            try Socket.writeAll(fd, Array(head.utf8), timeout: timeout)
        case let .stream(produce):
            let chunked = minorVersion == 1
            if chunked { head += "Transfer-Encoding: chunked\r\n" }
            head += chunked && keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
            try Socket.writeAll(fd, Array(head.utf8), timeout: timeout)
            let writer = SocketBodyWriter(fd: fd, timeout: timeout, chunked: chunked)
            try produce(writer)
            if chunked { try Socket.writeAll(fd, Array("0\r\n\r\n".utf8), timeout: timeout) }
            if !chunked { throw SocketError.closed }
        }
    }

    /// Headers the writer computes itself; a handler's values for them are ignored.
    private static let framingHeaders = ["content-length", "transfer-encoding", "connection", "date"]

    /// The current time in the IMF-fixdate form HTTP requires (`Sun, 06 Nov 1994 08:49:37 GMT`), formatted
    /// once per second (`DateHeader`) rather than per response.
    static func httpDate() -> String {
        DateHeader.shared.text(at: time(nil))
    }

    /// `httpDate` at `seconds` since the epoch; gmtime_r and strftime in the C locale are thread-safe, unlike
    /// a shared DateFormatter.
    static func formatHTTPDate(_ seconds: time_t) -> String {
        var now = seconds
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 40)
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The Date header's text of the current second, shared by the handler threads: the header changes once a
/// second, and formatting it for each of thousands of responses a second was a visible share of their CPU.
final class DateHeader: @unchecked Sendable {
    static let shared = DateHeader()
    private let lock = NSLock()
    // Guarded by `lock`.
    private var second: time_t = -1
    private var formatted = ""

    func text(at now: time_t) -> String {
        lock.withLock {
            if now != second {
                formatted = ResponseWriter.formatHTTPDate(now)
                second = now
            }
            return formatted
        }
    }
}

/// Streams a body of a declared length, refusing to write past it.
final class CountingBodyWriter: ResponseBodyWriter {
    let fd: Int32
    let timeout: Double
    let limit: Int
    private(set) var written = 0

    init(fd: Int32, timeout: Double, limit: Int) {
        self.fd = fd
        self.timeout = timeout
        self.limit = limit
    }

    func write(_ bytes: [UInt8]) throws {
        guard written + bytes.count <= limit else { throw SocketError.closed }
        try Socket.writeAll(fd, bytes, timeout: timeout)
        written += bytes.count
    }
}

/// Streams body pieces to the socket, each as one chunk when chunked.
private struct SocketBodyWriter: ResponseBodyWriter {
    let fd: Int32
    let timeout: Double
    let chunked: Bool

    func write(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        if chunked { try Socket.writeAll(fd, Array((String(bytes.count, radix: 16) + "\r\n").utf8), timeout: timeout) }
        try Socket.writeAll(fd, bytes, timeout: timeout)
        if chunked { try Socket.writeAll(fd, [13, 10], timeout: timeout) }
    }
}
