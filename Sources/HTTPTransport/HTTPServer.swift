// The socket server: one poll() loop owns every connection that is reading, a pool of handler threads runs
// handlers and writes responses, and connections pass between them. Slow clients only ever cost a poll slot,
// never a thread. Timeouts are decided on a `ServerClock`; what happens is reported as `HTTPServerEvent`s.
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Limits and timeouts of the server.
public struct HTTPServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    /// Most open connections. At the cap the longest-idle keep-alive connection is closed to admit a new one;
    /// with none idle (every connection in a request), the newcomer is answered 503 at once.
    public var maxConnections = 1024
    /// Most open connections from one client address, so that one client cannot take every slot; past it the
    /// address's own longest-idle connection makes room (or 503). Behind a proxy every client shares the
    /// proxy's address, and the proxy's own limits are what apply.
    public var maxConnectionsPerAddress = 256
    /// Threads that run handlers and write responses.
    public var handlerThreads = 8
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

/// What the connection loop did, reported to the `events` observer on the loop's thread (it must be quick):
/// for logs, and for tests that wait for the event they expect instead of for time to pass. A peer is the
/// client's address as `HOST:PORT` (`[HOST]:PORT` for IPv6).
public enum HTTPServerEvent: Sendable, Equatable {
    /// A connection was accepted; its idle timeout runs from now.
    case accepted(peer: String)
    /// The loop has read `total` bytes from `peer` since it connected, and acted on them (parsed them,
    /// handed a complete request over, set the next timeout).
    case received(peer: String, total: Int)
    /// The server closed the connection, or found it closed by the peer.
    case closed(peer: String)
    /// The listening socket is closed (shutdown began): new connections are refused from now on.
    case listenerClosed
    /// A new connection was answered 503 and closed at once: the cap (overall or for its address) was
    /// reached and no connection was idle to make room.
    case refused(peer: String)
}

/// A socket-based HTTP/1.1 server. `start()` binds and returns; `shutdown()` stops accepting, finishes what is
/// in progress, and `wait()` returns once every connection is closed.
public final class HTTPServer<Application: HTTPApplication>: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    private let application: Application
    private let clock: ServerClock
    private let events: (@Sendable (HTTPServerEvent) -> Void)?
    private let logger: Logger
    private let handlers: HandlerThreadPool
    private var listener: Int32 = -1
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1
    /// The port actually bound (differs from the configuration for port 0).
    public private(set) var port: UInt16 = 0

    // Owned by the loop thread.
    private var connections: [Int32: Connection<Application.Body>] = [:]
    /// Open connections per client host, for `maxConnectionsPerAddress`.
    private var connectionsPerHost: [String: Int] = [:]
    /// Counts connections becoming idle; the smallest stamp among idle connections is the longest idle.
    private var idleStamps: UInt64 = 0
    private var shutdownDeadline: Double?

    // Shared between the loop and the handler threads, under `lock`.
    private let lock = NSLock()
    private var returned: [(Connection<Application.Body>, Bool)] = []
    private var shutdownRequested = false
    private let finished = DispatchSemaphore(value: 0)

    /// `clock` decides the idle, head, body-stall and shutdown timeouts; `events` hears what the loop does.
    public init(configuration: HTTPServerConfiguration, application: Application, clock: ServerClock = MonotonicClock(),
                events: (@Sendable (HTTPServerEvent) -> Void)? = nil, logger: Logger = Logger(label: "dynstereo.http")) {
        self.configuration = configuration
        self.application = application
        self.clock = clock
        self.events = events
        self.logger = logger
        handlers = HandlerThreadPool(count: configuration.handlerThreads, name: "http-handler")
    }

    /// Binds the listening socket and starts the loop thread.
    public func start() throws {
        // A peer that disappears mid-write must produce EPIPE, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        raiseDescriptorLimit()
        let bound = try Socket.listen(host: configuration.host, port: configuration.port)
        listener = bound.fd
        port = bound.port
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw SocketError.system(call: "pipe", errno: errno) }
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        try Socket.setNonBlocking(wakeRead)
        try Socket.setNonBlocking(wakeWrite)
        clock.attach { [self] in wake() }
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
        handlers.stop()
        // No handler runs any more, so descriptors a handler could still have used (the wake pipe, connections
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
            let now = clock.now()
            if stopping && shutdownDeadline == nil { beginShutdown(now: now) }
            if let deadline = shutdownDeadline {
                if connections.isEmpty || now >= deadline + configuration.writeTimeout { break }
                if now >= deadline { cutConnections() }
            }
            sweepDeadlines(now: now)

            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            // Polled even at the cap: a newcomer then takes the slot of the longest-idle connection.
            if listener >= 0 { descriptors.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
            for connection in connections.values where connection.state == .reading {
                descriptors.append(pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0))
            }
            var nextDeadline = connections.values.compactMap { $0.state == .reading ? $0.deadline : nil }.min()
            if let deadline = shutdownDeadline {
                // Wake for the cut, then for the final give-up; returning handlers wake the loop themselves.
                let wakeAt = now < deadline ? deadline : deadline + configuration.writeTimeout
                nextDeadline = min(nextDeadline ?? wakeAt, wakeAt)
            }
            let timeout = clock.pollTimeout(now: now, deadline: nextDeadline)
            let ready = poll(&descriptors, nfds_t(descriptors.count), timeout)
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
        clock.detach()
        finished.signal()
    }

    private func beginShutdown(now: Double) {
        shutdownDeadline = now + configuration.shutdownGrace
        if listener >= 0 {
            Glibc.close(listener)
            listener = -1
            events?(.listenerClosed)
        }
        // Idle keep-alive connections have nothing in progress: close them now. Bytes that reached the socket
        // but not yet the parser are a request the client already began, so their connection is not idle.
        for connection in connections.values
        where connection.state == .reading && connection.parser.isAtMessageBoundary && !Socket.hasUnreadBytes(connection.fd) {
            close(connection)
        }
        logger.info("shutting down", metadata: ["open_connections": "\(connections.count)"])
    }

    /// The grace period is over: reading connections are closed; those a handler holds are shut down, which
    /// fails the handler's next write at once, and are closed when the handler hands them back. Closing those
    /// here would free their descriptor numbers for reuse while a handler may still write to them.
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
        // A bounded batch, so that a flood of connections cannot keep the loop from the ones it has.
        for _ in 0..<256 {
            guard let (fd, peer) = Socket.accept(listener) else { return }
            do {
                try Socket.setNonBlocking(fd)
            } catch {
                Glibc.close(fd)
                continue
            }
            // Room is made first within the address's own connections, then among all.
            if connectionsPerHost[peer.host, default: 0] >= configuration.maxConnectionsPerAddress,
               !closeLongestIdle(where: { $0.peer.host == peer.host }) {
                refuse(fd, peer: peer)
                continue
            }
            if connections.count >= configuration.maxConnections, !closeLongestIdle(where: { _ in true }) {
                refuse(fd, peer: peer)
                continue
            }
            Socket.setNoDelay(fd)
            let connection = Connection<Application.Body>(fd: fd, peer: peer, limits: configuration.parserLimits)
            connection.deadline = clock.now() + configuration.idleTimeout
            markIdle(connection)
            connections[fd] = connection
            connectionsPerHost[peer.host, default: 0] += 1
            events?(.accepted(peer: peer.description))
        }
    }

    private func markIdle(_ connection: Connection<Application.Body>) {
        idleStamps += 1
        connection.idleStamp = idleStamps
    }

    /// Closes the longest-idle keep-alive connection among those `matching`: one the loop holds between
    /// requests, with no byte of a next request received. False when there is none.
    private func closeLongestIdle(where matching: (Connection<Application.Body>) -> Bool) -> Bool {
        var busy = Set<Int32>()
        while true {
            var oldest: Connection<Application.Body>?
            for connection in connections.values
            where connection.state == .reading && connection.parser.isAtMessageBoundary && !busy.contains(connection.fd)
                && matching(connection) {
                if connection.idleStamp < oldest?.idleStamp ?? .max { oldest = connection }
            }
            guard let oldest else { return false }
            // Bytes in the socket that the loop has not read yet are a request begun: not idle after all.
            if Socket.hasUnreadBytes(oldest.fd) {
                busy.insert(oldest.fd)
                continue
            }
            logger.debug("closing the longest-idle connection to admit a new one", metadata: ["peer": "\(oldest.peer)"])
            close(oldest)
            return true
        }
    }

    /// Answers a connection there is no room for with the application's 503 and closes it, from the loop: a
    /// new socket's send buffer is empty, so the small write completes at once or is given up (timeout 0).
    private func refuse(_ fd: Int32, peer: PeerAddress) {
        var response = application.response(for: HTTPTransportError.overloaded)
        response.closeConnection = true
        try? ResponseWriter(fd: fd, timeout: 0).write(response, minorVersion: 1, keepAlive: false)
        application.responded(to: nil, status: response.status)
        // Whatever the client already sent is read first: closing with unread bytes would reset the
        // connection and could destroy the 503 before the client reads it.
        Socket.drain(fd)
        Glibc.close(fd)
        events?(.refused(peer: peer.description))
    }

    /// Lets the process hold `maxConnections` sockets (plus the listener, the wake pipe and what handlers
    /// open): the soft descriptor limit is raised toward the hard one when it is lower.
    private func raiseDescriptorLimit() {
        let needed = rlim_t(configuration.maxConnections + configuration.handlerThreads + 64)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < needed else { return }
        limit.rlim_cur = min(needed, limit.rlim_max)
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 || limit.rlim_cur < needed {
            logger.warning("the descriptor limit is below --max-connections", metadata: [
                "limit": "\(limit.rlim_cur)", "needed": "\(needed)"])
        }
    }

    private func readFrom(_ connection: Connection<Application.Body>, buffer: inout [UInt8]) {
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
        connection.receivedBytes += count
        let now = clock.now()
        if wasAtBoundary { connection.deadline = now + configuration.headTimeout }
        drive(connection)
        if connection.state == .reading && connection.parser.isInBody {
            connection.deadline = now + configuration.bodyStallTimeout
        }
        events?(.received(peer: connection.peer.description, total: connection.receivedBytes))
    }

    /// Pulls parser events until the parser needs more bytes or the connection is handed to a handler.
    private func drive(_ connection: Connection<Application.Body>) {
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
                    dispatch(connection, response: refusal(error))
                    return
                }
            case .end:
                if let response = connection.pendingResponse {
                    connection.pendingResponse = nil
                    dispatch(connection, response: response)
                    return
                }
                // Every head either got a refusal (answered above) or a sink: `prepare` returns one of the two.
                guard let sink = connection.sink, let head = connection.head else {
                    preconditionFailure("a message ended without a head or a body sink")
                }
                connection.sink = nil
                let body: Application.Body
                do {
                    body = try sink.finish()
                } catch {
                    sink.discard()
                    dispatch(connection, response: refusal(error))
                    return
                }
                connection.state = .processing
                let application = self.application
                // The handler drops the request before writing the response, so whatever its body holds (an
                // upload's temp files) is released by the time the client reads the answer.
                var request = HTTPRequest(head: head, body: body)
                let fd = connection.fd
                request.clientGone = { Self.peerHasGone(fd) }
                let pending = PendingRequest(request)
                handlers.submit { [self] in
                    let response = application.respond(to: pending.take())
                    finish(connection, response: response)
                }
                return
            case let .error(error):
                connection.sink?.discard()
                connection.sink = nil
                dispatch(connection, response: refusal(HTTPTransportError.malformed(error)))
                return
            }
        }
    }

    /// The application's response for an error that ends the request; the connection is closed after it, since
    /// the rest of the request stream can no longer be trusted.
    private func refusal(_ error: Error) -> HTTPResponse {
        var response = application.response(for: error)
        response.closeConnection = true
        return response
    }

    /// Hands a ready response to a handler thread for writing.
    private func dispatch(_ connection: Connection<Application.Body>, response: HTTPResponse) {
        connection.state = .processing
        handlers.submit { [self] in finish(connection, response: response) }
    }

    /// On a handler thread: writes the response, then returns the connection to the loop or closes it.
    private func finish(_ connection: Connection<Application.Body>, response: HTTPResponse) {
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
            // While draining, a connection handed back is idle unless its client has begun another request
            // (bytes buffered or waiting in the socket): that one is finished, as at the start of shutdown.
            let idleWhileDraining = shutdownDeadline != nil && connection.parser.isAtMessageBoundary
                && !Socket.hasUnreadBytes(connection.fd)
            guard reusable && !idleWhileDraining else {
                close(connection)
                continue
            }
            connection.state = .reading
            connection.head = nil
            connection.parser.bodyLimit = 0
            markIdle(connection)
            let now = clock.now()
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
                dispatch(connection, response: refusal(HTTPTransportError.requestTimeout))
            }
        }
    }

    private func close(_ connection: Connection<Application.Body>) {
        connection.sink?.discard()
        connection.sink = nil
        connections.removeValue(forKey: connection.fd)
        let host = connection.peer.host
        if let count = connectionsPerHost[host] { connectionsPerHost[host] = count > 1 ? count - 1 : nil }
        Glibc.close(connection.fd)
        connection.state = .closed
        events?(.closed(peer: connection.peer.description))
    }

    /// True once the peer has closed its side or reset the connection; bytes it sent are left unread.
    static func peerHasGone(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return true }
        return count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
    }
}

/// A request on its way to a handler thread, which takes it out so nothing else keeps its body alive.
private final class PendingRequest<Body>: @unchecked Sendable {
    private var request: HTTPRequest<Body>?

    init(_ request: HTTPRequest<Body>) { self.request = request }

    /// The request, handed out once (one handler runs it).
    func take() -> HTTPRequest<Body> {
        guard let request else { preconditionFailure("a request was handed to two handlers") }
        self.request = nil
        return request
    }
}

/// One client connection; owned by the loop while reading, by one handler thread while a request is handled.
final class Connection<Body> {
    enum State { case reading, processing, closed }

    let fd: Int32
    let peer: PeerAddress
    var state = State.reading
    var parser: HTTPRequestParser
    var head: HTTPRequestHead?
    var sink: (any RequestBodySink<Body>)?
    /// Bytes read from the peer since it connected (reported in `HTTPServerEvent.received`).
    var receivedBytes = 0
    /// When the connection last became idle, as a count (see `HTTPServer.idleStamps`).
    var idleStamp: UInt64 = 0
    /// A refusal decided from a body-less head, sent once the parser confirms the message ended.
    var pendingResponse: HTTPResponse?
    var deadline: Double = 0
    /// Shut down at the end of the shutdown grace period, awaiting its handler.
    var cut = false

    init(fd: Int32, peer: PeerAddress, limits: HTTPParserLimits) {
        self.fd = fd
        self.peer = peer
        parser = HTTPRequestParser(limits: limits)
    }
}
