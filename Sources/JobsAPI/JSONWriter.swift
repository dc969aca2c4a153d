// JSON written straight into a byte buffer, for the job views: a status poll is the hottest route, and its JSON
// grows with the video's windows, so it is not built through JSONEncoder's containers.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Appends JSON values to `bytes`, putting commas and colons where they belong. The caller opens and closes
/// containers in order (a mismatch is a programming error) and gives an object's keys in the order it wants
/// them written: the views give them sorted, as `JSON.encode` sorts its keys.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// One entry per open container: whether it has a member yet (the next one needs a comma).
    private var hasMember: [Bool] = []
    /// A key was just written: the next value is its value, with no comma before it.
    private var afterKey = false

    init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    mutating func beginObject() {
        beforeValue()
        bytes.append(UInt8(ascii: "{"))
        hasMember.append(false)
    }

    mutating func endObject() {
        precondition(!afterKey && hasMember.popLast() != nil, "an object closed after a key or with none open")
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func beginArray() {
        beforeValue()
        bytes.append(UInt8(ascii: "["))
        hasMember.append(false)
    }

    mutating func endArray() {
        precondition(!afterKey && hasMember.popLast() != nil, "an array closed after a key or with none open")
        bytes.append(UInt8(ascii: "]"))
    }

    /// An object member's key; its value comes next.
    mutating func key(_ name: String) {
        precondition(!afterKey, "two keys in a row")
        beforeValue()
        appendQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    mutating func string(_ value: String?) {
        guard let value else { return null() }
        beforeValue()
        appendQuoted(value)
    }

    mutating func int(_ value: Int?) {
        guard let value else { return null() }
        beforeValue()
        appendDigits(value)
    }

    /// Integral values as integers (as JSONEncoder writes them), others in Swift's shortest round-trip form.
    /// Non-finite values have no JSON form: null.
    mutating func double(_ value: Double?) {
        guard let value, value.isFinite else { return null() }
        beforeValue()
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            appendDigits(Int(value))
        } else {
            bytes.append(contentsOf: value.description.utf8)
        }
    }

    mutating func bool(_ value: Bool) {
        beforeValue()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func null() {
        beforeValue()
        bytes.append(contentsOf: "null".utf8)
    }

    /// A time as RFC 3339 in UTC with milliseconds (`2026-12-01T12:00:00.250Z`), truncated to the millisecond.
    mutating func timestamp(_ date: Date?) {
        guard let date else { return null() }
        beforeValue()
        bytes.append(UInt8(ascii: "\""))
        Self.appendTimestamp(date, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `timestamp`'s text on its own (for messages).
    static func timestampText(_ date: Date) -> String {
        var text: [UInt8] = []
        appendTimestamp(date, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    private static func appendTimestamp(_ date: Date, to bytes: inout [UInt8]) {
        let millis = Int((date.timeIntervalSince1970 * 1000).rounded(.down))
        let milli = ((millis % 1000) + 1000) % 1000
        var time = time_t((millis - milli) / 1000)
        var parts = tm()
        gmtime_r(&time, &parts)
        func padded(_ value: Int, _ width: Int) {
            var digits = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            var rest = value
            for position in stride(from: width - 1, through: 0, by: -1) {
                digits[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            bytes.append(contentsOf: digits)
        }
        padded(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        padded(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        padded(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        padded(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        padded(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        padded(Int(parts.tm_sec), 2)
        bytes.append(UInt8(ascii: "."))
        padded(milli, 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    private mutating func beforeValue() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = hasMember.indices.last else { return }
        if hasMember[last] { bytes.append(UInt8(ascii: ",")) }
        hasMember[last] = true
    }

    private mutating func appendDigits(_ value: Int) {
        bytes.append(contentsOf: String(value).utf8)
    }

    /// A JSON string: `"` and `\` escaped, control characters as escapes; the rest as its UTF-8 (slashes
    /// unescaped, as `JSON.encode` writes them).
    private mutating func appendQuoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        // Most strings (ids, names, URLs, timestamps) need no escape: one copy instead of a byte at a time,
        // which was a tenth of a status poll's CPU.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: text.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
