// A blocking socket client for the server tests: sends exact bytes and reads exact responses, so framing,
// keep-alive and connection closes can be asserted byte for byte.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One response as read off the wire.
public struct RawResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The `code` of a JSON error body.
    public var errorCode: String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let error = object["error"] as? [String: Any] else { return nil }
        return error["code"] as? String
    }

    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
    }
}

public struct ClientError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) { self.description = description }
}

/// A TCP connection to the server under test. Its receive timeout only keeps a broken server from hanging
/// the test run; no test relies on it passing.
public final class RawClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to `127.0.0.1:port`, from `source` (another loopback address such as `127.0.0.7`) when given.
    public init(port: UInt16, source: String? = nil, timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw ClientError(description: "bind \(source) failed: \(String(cString: strerror(errno)))")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw ClientError(description: "connect failed: \(String(cString: strerror(errno)))")
        }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// This end's address as the server sees it, `HOST:PORT` (what `HTTPServerEvent` names the peer by).
    public var localAddress: String {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var raw = address.sin_addr
        inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
        return "\(String(cString: text)):\(UInt16(bigEndian: address.sin_port))"
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw ClientError(description: "send failed: \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    /// Reads more bytes; false at end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw ClientError(description: "timed out waiting for the server") }
            if errno == ECONNRESET { return false }
            throw ClientError(description: "recv failed: \(String(cString: strerror(errno)))")
        }
        if count == 0 { return false }
        buffer += chunk[0..<count]
        return true
    }

    private func line() throws -> String {
        while true {
            if let index = buffer.indices.dropLast().first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 }) {
                let text = String(decoding: buffer[..<index], as: UTF8.self)
                buffer.removeFirst(index + 2)
                return text
            }
            guard try fill() else { throw ClientError(description: "connection closed mid-line") }
        }
    }

    private func bytes(_ count: Int) throws -> [UInt8] {
        while buffer.count < count {
            guard try fill() else { throw ClientError(description: "connection closed mid-body") }
        }
        let out = Array(buffer[..<count])
        buffer.removeFirst(count)
        return out
    }

    /// Reads one response, including interim 1xx responses when `skipInterim` is false.
    public func response(skipInterim: Bool = true, headRequest: Bool = false) throws -> RawResponse {
        while true {
            let statusLine = try line()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
                throw ClientError(description: "bad status line '\(statusLine)'")
            }
            var headers: [(String, String)] = []
            while true {
                let field = try line()
                if field.isEmpty { break }
                guard let colon = field.firstIndex(of: ":") else { throw ClientError(description: "bad header '\(field)'") }
                headers.append((String(field[..<colon]), field[field.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            var response = RawResponse(status: status, headers: headers, body: [])
            if status < 200 {
                if skipInterim { continue }
                return response
            }
            if headRequest || status == 204 { return response }
            if let length = response.header("Content-Length") {
                response.body = try bytes(Int(length)!)
            } else if response.header("Transfer-Encoding") == "chunked" {
                while true {
                    let size = Int(try line(), radix: 16)!
                    if size == 0 {
                        _ = try line()
                        break
                    }
                    response.body += try bytes(size)
                    _ = try line()
                }
            } else {
                while try fill() {}
                response.body = buffer
                buffer = []
            }
            return response
        }
    }

    /// True when the server has closed the connection (nothing more arrives). Blocks until it knows.
    public func isClosedByServer() -> Bool {
        guard buffer.isEmpty else { return false }
        return (try? fill()) == false
    }

    /// True when, right now, nothing has arrived from the server: no bytes and no close. Never blocks; use it
    /// only where the server has provably not acted yet (a timeout its clock has not reached).
    public func hasReceivedNothing() -> Bool {
        guard buffer.isEmpty else { return false }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }
}

/// Builds a multipart/form-data body.
public struct MultipartBody {
    public let boundary = "----rawclient\(UInt32.random(in: 0...UInt32.max))"
    public var bytes: [UInt8] = []

    public init() {}

    public mutating func file(_ name: String, filename: String, _ content: [UInt8]) {
        bytes += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: application/x-tar\r\n\r\n".utf8)
        bytes += content + [13, 10]
    }

    public mutating func field(_ name: String, _ value: String) {
        bytes += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
    }

    public func finished() -> [UInt8] { bytes + Array("--\(boundary)--\r\n".utf8) }
    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    /// A whole POST /jobs request.
    public func request(headers: [String] = []) -> [UInt8] {
        let body = finished()
        let head = (["POST /jobs HTTP/1.1", "Host: test", "Content-Type: \(contentType)", "Content-Length: \(body.count)"] + headers)
            .joined(separator: "\r\n") + "\r\n\r\n"
        return Array(head.utf8) + body
    }
}
