// The contract between the connection loop and whatever answers requests (the job API, or a test double).
// The transport knows no application: what a body becomes is the application's own type, produced by a sink
// the application hands over per request, and errors the transport raises are rendered by the application.
import Foundation

/// A complete request as a handler sees it: the head and what the application's body sink made of the body.
public struct HTTPRequest<Body> {
    public var head: HTTPRequestHead
    public var body: Body
    /// Whether the client has closed its connection, so that long work for it can stop; valid while the
    /// handler runs. The server sets it; a request built elsewhere has a client that never leaves.
    public var clientGone: @Sendable () -> Bool = { false }

    public init(head: HTTPRequestHead, body: Body) {
        self.head = head
        self.body = body
    }
}

/// Receives a request body as it arrives, on the connection loop's thread: it must not block for long.
public protocol RequestBodySink<Body>: AnyObject {
    /// What the sink makes of a complete body (bytes in memory, a form with files on disk, ...).
    associatedtype Body
    /// Takes the next piece of the body; throwing refuses the request (the error becomes the response).
    func write(_ bytes: [UInt8]) throws
    /// The body is complete.
    func finish() throws -> Body
    /// The request was abandoned (peer gone, timeout, refusal): release anything held, such as temp files.
    func discard()
}

/// Collects a small body in memory and hands it to `makeBody`.
public final class MemoryBodySink<Body>: RequestBodySink {
    private var bytes: [UInt8] = []
    private let makeBody: ([UInt8]) -> Body

    public init(_ makeBody: @escaping ([UInt8]) -> Body) {
        self.makeBody = makeBody
    }

    public func write(_ bytes: [UInt8]) throws { self.bytes += bytes }
    public func finish() throws -> Body { makeBody(bytes) }
    public func discard() { bytes = [] }
}

extension MemoryBodySink where Body == [UInt8] {
    /// A sink whose body is the bytes themselves.
    public convenience init() { self.init { $0 } }
}

/// How to take a request's body, decided from its head before any body byte is read.
public enum RequestPreparation<Body> {
    /// Answer without reading the body; a request with a body then has its connection closed, so unread
    /// bytes can never be mistaken for a next request.
    case reject(HTTPResponse)
    /// Stream the body, at most `maxBytes` of it, into `sink`.
    case accept(any RequestBodySink<Body>, maxBytes: Int)
}

/// A request the transport refused by itself, before any handler saw it. The application renders it (see
/// `HTTPApplication.response(for:)`); the connection is closed after the response.
public enum HTTPTransportError: Error, Equatable, CustomStringConvertible {
    /// The bytes are not an acceptable HTTP/1.1 request.
    case malformed(HTTPParseError)
    /// The head did not arrive within the head timeout, or the body stalled past the body-stall timeout.
    case requestTimeout
    /// No connection slot is free and none is idle to make room (see `maxConnections`).
    case overloaded

    public var status: HTTPStatus {
        switch self {
        case let .malformed(error): return error.status
        case .requestTimeout: return .requestTimeout
        case .overloaded: return .unavailable
        }
    }

    /// A stable machine-readable code.
    public var code: String {
        switch self {
        case let .malformed(error): return error.code
        case .requestTimeout: return "request_timeout"
        case .overloaded: return "server_busy"
        }
    }

    public var description: String {
        switch self {
        case let .malformed(error): return error.description
        case .requestTimeout: return "the request was not received in time"
        case .overloaded: return "the server has no free connection; try again shortly"
        }
    }
}

/// Answers requests for `HTTPServer`.
public protocol HTTPApplication: AnyObject, Sendable {
    /// What a request body becomes, as the application's sinks produce it.
    associatedtype Body
    /// Called on the connection loop once a head is parsed; must be quick.
    func prepare(_ head: HTTPRequestHead) -> RequestPreparation<Body>
    /// Called on a handler thread with the complete request; may block (database calls).
    func respond(to request: HTTPRequest<Body>) -> HTTPResponse
    /// Called after every response, including those the server produced itself (parse errors, timeouts);
    /// `head` is nil when the request never got that far.
    func responded(to head: HTTPRequestHead?, status: HTTPStatus)
    /// Turns an error into a response: one a body sink threw, or an `HTTPTransportError` the server raised
    /// itself (a malformed request, a timeout), which should keep its status.
    func response(for error: Error) -> HTTPResponse
}
