// Thin wrappers over POSIX sockets (Glibc): a listening socket, non-blocking flags, and writes with a deadline.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Socket failures, with the call that failed and the errno text.
public enum SocketError: Error, CustomStringConvertible {
    case system(call: String, errno: Int32)
    case badAddress(String)
    case timedOut
    case closed

    public var description: String {
        switch self {
        case let .system(call, code): return "\(call) failed: \(String(cString: strerror(code)))"
        case let .badAddress(address): return "cannot listen on '\(address)': expected HOST:PORT"
        case .timedOut: return "socket write timed out"
        case .closed: return "peer closed the connection"
        }
    }
}

/// A client's address: `host` is numeric (`127.0.0.1`, `::1`).
struct PeerAddress: Hashable, CustomStringConvertible {
    var host: String
    var port: UInt16

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

enum Socket {
    /// The next pending connection and its peer; nil when none is waiting (or accept failed).
    static func accept(_ listener: Int32) -> (fd: Int32, peer: PeerAddress)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
        }
        guard fd >= 0 else { return nil }
        return (fd, peerAddress(storage))
    }

    static func peerAddress(_ storage: sockaddr_storage) -> PeerAddress {
        var storage = storage
        let family = storage.ss_family
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        return withUnsafePointer(to: &storage) { pointer -> PeerAddress in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var raw = address.pointee.sin6_addr
                    inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                    return PeerAddress(host: String(cString: text), port: UInt16(bigEndian: address.pointee.sin6_port))
                }
            }
            if family == sa_family_t(AF_INET) {
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var raw = address.pointee.sin_addr
                    inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                    return PeerAddress(host: String(cString: text), port: UInt16(bigEndian: address.pointee.sin_port))
                }
            }
            return PeerAddress(host: "unknown", port: 0)
        }
    }

    /// Reads and drops what a non-blocking socket has received so far (at most 64 KiB).
    static func drain(_ fd: Int32) {
        var scratch = [UInt8](repeating: 0, count: 16 * 1024)
        for _ in 0..<4 {
            let count = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return }
        }
    }

    /// Whether bytes wait in the socket's receive buffer that nobody has read yet.
    static func hasUnreadBytes(_ fd: Int32) -> Bool {
        var count: Int32 = 0
        return ioctl(fd, UInt(FIONREAD), &count) == 0 && count > 0
    }

    /// A non-blocking listening socket bound to `host:port`, and the port it got (for port 0).
    static func listen(host: String, port: UInt16, backlog: Int32 = 1024) throws -> (fd: Int32, port: UInt16) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { throw SocketError.badAddress("\(host):\(port)") }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 { lastErrno = errno; continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 || Glibc.listen(fd, backlog) != 0 {
                lastErrno = errno
                close(fd)
                continue
            }
            try setNonBlocking(fd)
            return (fd, try boundPort(fd))
        }
        throw SocketError.system(call: "bind \(host):\(port)", errno: lastErrno)
    }

    static func boundPort(_ fd: Int32) throws -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw SocketError.system(call: "getsockname", errno: errno) }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer -> UInt16 in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    static func setNonBlocking(_ fd: Int32) throws {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw SocketError.system(call: "fcntl O_NONBLOCK", errno: errno)
        }
    }

    /// Small responses go out at once instead of waiting on Nagle's algorithm for an ACK.
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Writes every byte to a non-blocking socket, waiting at most `timeout` seconds for each stall.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, timeout: Double) throws {
        var offset = 0
        while offset < bytes.count {
            let written = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if written > 0 {
                offset += written
                continue
            }
            let code = errno
            if written < 0 && (code == EAGAIN || code == EWOULDBLOCK || code == EINTR) {
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&descriptor, 1, Int32(timeout * 1000))
                if ready == 0 { throw SocketError.timedOut }
                if ready < 0 && errno != EINTR { throw SocketError.system(call: "poll", errno: errno) }
                continue
            }
            if code == EPIPE || code == ECONNRESET { throw SocketError.closed }
            throw SocketError.system(call: "send", errno: code)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], timeout: Double) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, timeout: timeout) }
    }
}
