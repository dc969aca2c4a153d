// What a client sees when a request fails: a status and `{"error": {"code": ..., "message": ...}}`.
import Foundation
import HTTPTransport

/// A user-facing error: the status to send and a stable code with a readable message.
public struct APIError: Error, CustomStringConvertible, Equatable {
    public var status: HTTPStatus
    public var code: String
    public var message: String
    /// Extra response headers (`Allow` on 405).
    public var headers: [(String, String)] = []

    public init(_ status: HTTPStatus, _ code: String, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public static func == (lhs: APIError, rhs: APIError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }
    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }
    public static func unprocessable(_ code: String, _ message: String) -> APIError { APIError(.unprocessable, code, message) }

    /// The JSON error response.
    public var response: HTTPResponse {
        let body: [String: [String: String]] = ["error": ["code": code, "message": message]]
        var response = HTTPResponse(status: status, contentType: "application/json", bytes: JSON.encode(body))
        for (name, value) in headers { response.headers.add(name: name, value: value) }
        return response
    }
}

/// JSON encoding with stable key order, shared by every JSON response.
enum JSON {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain value types cannot fail; a failure would be a programming error.
        guard let data = try? encoder.encode(value) else { preconditionFailure("unencodable JSON value \(T.self)") }
        return Array(data) + [10]
    }
}
