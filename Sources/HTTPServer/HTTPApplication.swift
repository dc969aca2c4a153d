// The contract between the connection loop and whatever answers requests (the job API, or a test double).
import Foundation

/// A complete request as a handler sees it: the head and the already-received body.
public struct HTTPRequest {
    public var head: HTTPRequestHead
    public var body: RequestBody
    /// Whether the client has closed its connection, so that long work for it can stop; valid while the
    /// handler runs. The server sets it; a request built elsewhere has a client that never leaves.
    public var clientGone: @Sendable () -> Bool = { false }

    public init(head: HTTPRequestHead, body: RequestBody) {
        self.head = head
        self.body = body
    }
}

/// What a body sink produced.
public enum RequestBody {
    case none
    case bytes([UInt8])
    case form(UploadedForm)
}

/// Receives a request body as it arrives, on the connection loop's thread: it must not block for long.
public protocol RequestBodySink: AnyObject {
    /// Takes the next piece of the body; throwing refuses the request (the error becomes the response).
    func write(_ bytes: [UInt8]) throws
    /// The body is complete.
    func finish() throws -> RequestBody
    /// The request was abandoned (peer gone, timeout, refusal): release anything held, such as temp files.
    func discard()
}

/// Collects a small body in memory.
public final class MemoryBodySink: RequestBodySink {
    private var bytes: [UInt8] = []

    public init() {}

    public func write(_ bytes: [UInt8]) throws { self.bytes += bytes }
    public func finish() throws -> RequestBody { bytes.isEmpty ? .none : .bytes(bytes) }
    public func discard() { bytes = [] }
}

/// How to take a request's body, decided from its head before any body byte is read.
public enum RequestPreparation {
    /// Answer without reading the body; a request with a body then has its connection closed, so unread
    /// bytes can never be mistaken for a next request.
    case reject(HTTPResponse)
    /// Stream the body, at most `maxBytes` of it, into `sink`.
    case accept(RequestBodySink, maxBytes: Int)
}

/// Answers requests for `HTTPServer`.
public protocol HTTPApplication: AnyObject, Sendable {
    /// Called on the connection loop once a head is parsed; must be quick.
    func prepare(_ head: HTTPRequestHead) -> RequestPreparation
    /// Called on a worker thread with the complete request; may block (database calls).
    func respond(to request: HTTPRequest) -> HTTPResponse
    /// Called after every response, including those the server produced itself (parse errors, timeouts);
    /// `head` is nil when the request never got that far.
    func responded(to head: HTTPRequestHead?, status: HTTPStatus)
    /// Turns an error thrown by a body sink into a response.
    func response(for error: Error) -> HTTPResponse
}
