// HTTP Range requests (RFC 9110 section 14): the one form the result downloads serve, a single byte range.
import Foundation

/// What a `Range` header asks of a body of known size.
enum ByteRange: Equatable {
    /// No single byte range this understands: send the whole body.
    case none
    /// A byte range that starts past the end: 416.
    case unsatisfiable
    /// The bytes to send, never empty, within the body.
    case range(Range<Int>)

    /// `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; anything else (other units, several ranges,
    /// malformed numbers) is `.none`.
    static func parse(_ header: String, size: Int) -> ByteRange {
        let value = header.trimmingCharacters(in: .whitespaces)
        guard value.hasPrefix("bytes="), !value.contains(",") else { return .none }
        let spec = value.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .none }
        let (first, last) = (parts[0].trimmingCharacters(in: .whitespaces), parts[1].trimmingCharacters(in: .whitespaces))
        func number(_ text: String) -> Int? { text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber) ? Int(text) : nil }
        if first.isEmpty {
            guard let suffix = number(last) else { return .none }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - suffix)..<size)
        }
        guard let start = number(first) else { return .none }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .range(start..<size) }
        guard let end = number(last), end >= start else { return .none }
        return .range(start..<min(size, end + 1))
    }
}
