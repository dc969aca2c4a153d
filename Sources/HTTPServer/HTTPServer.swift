// The socket server: one poll() loop owns every connection that is reading, a worker pool runs handlers and
// writes responses, and connections pass between them. Slow clients only ever cost a poll slot, never a thread.
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Limits and timeouts of the server.
public struct HTTPServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var maxConnections = 1024
    public var workerThreads = 8
    /// A keep-alive connection with no request in progress is closed after this long.
    public var idleTimeout: Double = 30
    /// Time allowed from a request's first byte to the end of its head; not extended by trickled bytes.
    public var headTimeout: Double = 10
    /// Longest pause allowed while a body is being received.
    public var bodyStallTimeout: Double = 30
    /// Longest pause allowed while the client reads a response.
    public var writeTimeout: Double = 30
    /// After SIGTERM, how long requests in progress may take before their connections are cut.
    public var shutdownGrace: Double = 10
    public var parserLimits = HTTPParserLimits()

    public init() {}
}

/// A socket-based HTTP/1.1 server. `start()` binds and returns; `shutdown()` stops accepting, finishes what is
/// in progress, and `wait()` returns once every connection is closed.
public final class HTTPServer: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    private let application: HTTPApplication
    private let logger: Logger
    private let workers: WorkerPool
    private var listener: Int32 = -1
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1
    /// The port actually bound (differs from the configuration for port 0).
    public private(set) var port: UInt16 = 0

    // Owned by the loop thread.
    private var connections: [Int32: Connection] = [:]
    private var shutdownDeadline: Double?

    // Shared between the loop and the workers, under `lock`.
    private let lock = NSLock()
    private var returned: [(Connection, Bool)] = []
    private var shutdownRequested = false
    private let finished = DispatchSemaphore(value: 0)

    public init(configuration: HTTPServerConfiguration, application: HTTPApplication,
                logger: Logger = Logger(label: "dynstereo.http")) {
        self.configuration = configuration
        self.application = application
        self.logger = logger
        workers = WorkerPool(count: configuration.workerThreads, name: "http-worker")
    }

    /// Binds the listening socket and starts the loop thread.
    public func start() throws {
        // A peer that disappears mid-write must produce EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        let bound = try Socket.listen(host: configuration.host, port: configuration.port)
        listener = bound.fd
        port = bound.port
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw SocketError.system(call: "pipe", errno: errno) }
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        try Socket.setNonBlocking(wakeRead)
        try Socket.setNonBlocking(wakeWrite)
        let thread = Thread { [self] in loop() }
        thread.name = "http-loop"
        thread.start()
        logger.info("listening", metadata: ["address": "\(configuration.host):\(port)"])
    }

    /// Stops accepting; open requests get `shutdownGrace` seconds to finish. Safe from any thread.
    public func shutdown() {
        lock.lock()
        shutdownRequested = true
        lock.unlock()
        wake()
    }

    /// Blocks until the server has shut down and every connection is closed.
    public func wait() {
        finished.wait()
        workers.stop()
        // No worker runs any more, so descriptors a worker could still have used (the wake pipe, connections
        // it held past the grace period) can be closed without racing a reuse of their numbers.
        takeReturnedConnections()
        for connection in connections.values { close(connection) }
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    // MARK: - Loop

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func loop() {
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
        var descriptors: [pollfd] = []
        while true {
            takeReturnedConnections()
            lock.lock()
            let stopping = shutdownRequested
            lock.unlock()
            let now = Self.now()
            if stopping && shutdownDeadline == nil { beginShutdown(now: now) }
            if let deadline = shutdownDeadline {
                if connections.isEmpty || now >= deadline + configuration.writeTimeout { break }
                if now >= deadline { cutConnections() }
            }
            sweepDeadlines(now: now)

            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            let accepting = listener >= 0 && connections.count < configuration.maxConnections
            if accepting { descriptors.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
            for connection in connections.values where connection.state == .reading {
                descriptors.append(pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0))
            }
            var nextDeadline = connections.values.compactMap { $0.state == .reading ? $0.deadline : nil }.min()
            if let deadline = shutdownDeadline {
                // Wake for the cut, then for the final give-up; returning workers wake the loop themselves.
                let wakeAt = now < deadline ? deadline : deadline + configuration.writeTimeout
                nextDeadline = min(nextDeadline ?? wakeAt, wakeAt)
            }
            let waitSeconds = min(1.0, max(0, (nextDeadline ?? now + 1) - now))
            let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(waitSeconds * 1000) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("poll failed", metadata: ["errno": "\(errno)"])
                break
            }
            for descriptor in descriptors where descriptor.revents != 0 {
                if descriptor.fd == wakeRead {
                    var drain = [UInt8](repeating: 0, count: 256)
                    while read(wakeRead, &drain, drain.count) > 0 {}
                } else if descriptor.fd == listener {
                    acceptAll()
                } else if let connection = connections[descriptor.fd], connection.state == .reading {
                    readFrom(connection, buffer: &readBuffer)
                }
            }
        }
        if listener >= 0 { Glibc.close(listener) }
        listener = -1
        finished.signal()
    }

    private func beginShutdown(now: Double) {
        shutdownDeadline = now + configuration.shutdownGrace
        if listener >= 0 {
            Glibc.close(listener)
            listener = -1
        }
        // Idle keep-alive connections have nothing in progress: close them now.
        for connection in connections.values where connection.state == .reading && connection.parser.isAtMessageBoundary {
            close(connection)
        }
        logger.info("shutting down", metadata: ["open_connections": "\(connections.count)"])
    }

    /// The grace period is over: reading connections are closed; those a worker holds are shut down, which
    /// fails the worker's next write at once, and are closed when the worker hands them back. Closing those
    /// here would free their descriptor numbers for reuse while a worker may still write to them.
    private func cutConnections() {
        for connection in connections.values {
            switch connection.state {
            case .reading: close(connection)
            case .processing:
                if !connection.cut {
                    Glibc.shutdown(connection.fd, Int32(SHUT_RDWR))
                    connection.cut = true
                }
            case .closed: break
            }
        }
    }

    private func acceptAll() {
        while connections.count < configuration.maxConnections {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            do {
                try Socket.setNonBlocking(fd)
            } catch {
                Glibc.close(fd)
                continue
            }
            Socket.setNoDelay(fd)
            let connection = Connection(fd: fd, limits: configuration.parserLimits)
            connection.deadline = Self.now() + configuration.idleTimeout
            connections[fd] = connection
        }
    }

    private func readFrom(_ connection: Connection, buffer: inout [UInt8]) {
        let count = buffer.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            close(connection)
            return
        }
        if count == 0 {
            // The peer finished sending: a request in progress is truncated, otherwise the connection just ends.
            if case let .error(error)? = connection.parser.receiveEnd() {
                connection.sink?.discard()
                logger.debug("peer closed mid-request", metadata: ["error": "\(error)"])
                application.responded(to: connection.head, status: error.status)
            }
            close(connection)
            return
        }
        let wasAtBoundary = connection.parser.isAtMessageBoundary
        connection.parser.receive(buffer[0..<count])
        let now = Self.now()
        if wasAtBoundary { connection.deadline = now + configuration.headTimeout }
        drive(connection)
        if connection.state == .reading && connection.parser.isInBody {
            connection.deadline = now + configuration.bodyStallTimeout
        }
    }

    /// Pulls parser events until the parser needs more bytes or the connection is handed to a worker.
    private func drive(_ connection: Connection) {
        while connection.state == .reading, let event = connection.parser.next() {
            switch event {
            case let .head(head):
                connection.head = head
                switch application.prepare(head) {
                case let .reject(response):
                    if head.framing == .none {
                        connection.pendingResponse = response
                        connection.sink = nil
                    } else {
                        var response = response
                        response.closeConnection = true
                        dispatch(connection, response: response)
                        return
                    }
                case let .accept(sink, maxBytes):
                    connection.sink = sink
                    connection.parser.bodyLimit = maxBytes
                    var fitsLimit = true
                    if case let .contentLength(length) = head.framing { fitsLimit = length <= maxBytes }
                    // A body already known to be too large is refused (413 on the next event) without inviting it.
                    if head.expectsContinue && head.framing != .none && fitsLimit {
                        // The interim response is tiny and the send buffer of a connection waiting for it is
                        // empty, so a non-blocking write completes at once.
                        let line = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
                        _ = line.withUnsafeBytes { send(connection.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                }
            case let .body(bytes):
                guard let sink = connection.sink else { continue }
                do {
                    try sink.write(bytes)
                } catch {
                    sink.discard()
                    var response = application.response(for: error)
                    response.closeConnection = true
                    dispatch(connection, response: response)
                    return
                }
            case .end:
                if let response = connection.pendingResponse {
                    connection.pendingResponse = nil
                    dispatch(connection, response: response)
                    return
                }
                let sink = connection.sink
                connection.sink = nil
                let body: RequestBody
                do {
                    body = try sink?.finish() ?? .none
                } catch {
                    sink?.discard()
                    var response = application.response(for: error)
                    response.closeConnection = true
                    dispatch(connection, response: response)
                    return
                }
                guard let head = connection.head else { preconditionFailure("a message ended without a head") }
                connection.state = .processing
                let application = self.application
                workers.submit { [self] in
                    var request = HTTPRequest(head: head, body: body)
                    let fd = connection.fd
                    request.clientGone = { Self.peerHasGone(fd) }
                    let response = application.respond(to: request)
                    finish(connection, response: response)
                }
                return
            case let .error(error):
                connection.sink?.discard()
                connection.sink = nil
                dispatch(connection, response: error.response)
                return
            }
        }
    }

    /// Hands a ready response to a worker for writing.
    private func dispatch(_ connection: Connection, response: HTTPResponse) {
        connection.state = .processing
        workers.submit { [self] in finish(connection, response: response) }
    }

    /// On a worker: writes the response, then returns the connection to the loop or closes it.
    private func finish(_ connection: Connection, response: HTTPResponse) {
        let head = connection.head
        lock.lock()
        let draining = shutdownRequested
        lock.unlock()
        // While draining, say so: the client learns not to send another request on this connection.
        let keepAlive = (head?.keepAlive ?? false) && !response.closeConnection && !draining
        var reusable = false
        // Counted before writing, so a client that reads the response and asks /metrics at once sees it.
        application.responded(to: head, status: response.status)
        do {
            try ResponseWriter(fd: connection.fd, timeout: configuration.writeTimeout)
                .write(response, minorVersion: head?.minorVersion ?? 1, keepAlive: keepAlive, omitBody: head?.method == "HEAD")
            reusable = keepAlive
        } catch {
            logger.debug("response not delivered", metadata: ["error": "\(error)"])
        }
        lock.lock()
        returned.append((connection, reusable))
        lock.unlock()
        wake()
    }

    private func takeReturnedConnections() {
        lock.lock()
        let batch = returned
        returned.removeAll()
        lock.unlock()
        for (connection, reusable) in batch {
            guard reusable && shutdownDeadline == nil else {
                close(connection)
                continue
            }
            connection.state = .reading
            connection.head = nil
            connection.parser.bodyLimit = 0
            let now = Self.now()
            connection.deadline = now + (connection.parser.isAtMessageBoundary ? configuration.idleTimeout : configuration.headTimeout)
            // A pipelined request may already be buffered.
            drive(connection)
        }
    }

    private func sweepDeadlines(now: Double) {
        for connection in connections.values where connection.state == .reading && connection.deadline <= now {
            connection.sink?.discard()
            connection.sink = nil
            if connection.parser.isAtMessageBoundary {
                close(connection)
            } else {
                let error = APIError(.requestTimeout, "request_timeout", "the request was not received in time")
                var response = error.response
                response.closeConnection = true
                dispatch(connection, response: response)
            }
        }
    }

    private func close(_ connection: Connection) {
        connection.sink?.discard()
        connection.sink = nil
        connections.removeValue(forKey: connection.fd)
        Glibc.close(connection.fd)
        connection.state = .closed
    }

    /// True once the peer has closed its side or reset the connection; bytes it sent are left unread.
    static func peerHasGone(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return true }
        return count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// One client connection; owned by the loop while reading, by one worker while a request is handled.
final class Connection {
    enum State { case reading, processing, closed }

    let fd: Int32
    var state = State.reading
    var parser: HTTPRequestParser
    var head: HTTPRequestHead?
    var sink: RequestBodySink?
    /// A refusal decided from a body-less head, sent once the parser confirms the message ended.
    var pendingResponse: HTTPResponse?
    var deadline: Double = 0
    /// Shut down at the end of the shutdown grace period, awaiting its worker.
    var cut = false

    init(fd: Int32, limits: HTTPParserLimits) {
        self.fd = fd
        parser = HTTPRequestParser(limits: limits)
    }
}
