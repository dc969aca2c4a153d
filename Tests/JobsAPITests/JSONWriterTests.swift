// The job views' JSON writer: what it writes parses back to what was written, escapes included, and reads
// as `JSON.encode` (JSONEncoder) writes the same values.
import Foundation
import XCTest
@testable import JobsAPI

final class JSONWriterTests: XCTestCase {
    func testStringsNumbersAndContainersParseBackAndMatchJSONEncoder() throws {
        let awkward = "quote \" backslash \\ slash / newline \n tab \t bell \u{7} nul \u{0} ünïcødé 🎞"
        var json = JSONWriter()
        json.beginObject()
        json.key("a"); json.string(awkward)
        json.key("b"); json.int(-42)
        json.key("c"); json.double(500)
        json.key("d"); json.double(0.1)
        json.key("e"); json.double(nil)
        json.key("f")
        json.beginArray()
        json.beginArray(); json.int(0); json.int(3); json.endArray()
        json.beginObject(); json.endObject()
        json.bool(true)
        json.null()
        json.endArray()
        json.key("g"); json.string(nil)
        json.endObject()
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
        XCTAssertEqual(parsed["a"] as? String, awkward)
        XCTAssertEqual(parsed["b"] as? Int, -42)
        XCTAssertEqual(parsed["c"] as? Double, 500)
        XCTAssertEqual(parsed["d"] as? Double, 0.1)
        XCTAssertTrue(parsed["e"] is NSNull && parsed["g"] is NSNull)
        let list = try XCTUnwrap(parsed["f"] as? [Any])
        XCTAssertEqual(list.count, 4)
        XCTAssertEqual(list[0] as? [Int], [0, 3])

        // Strings and integers through JSONEncoder (what every other response uses) give the same text (control
        // characters but newline and tab left out: how they are escaped is the encoder's choice).
        let printable = "quote \" backslash \\ slash / newline \n tab \t ünïcødé 🎞"
        struct Same: Encodable {
            let a: String, b: Int
        }
        var mine = JSONWriter()
        mine.beginObject()
        mine.key("a"); mine.string(printable)
        mine.key("b"); mine.int(-42)
        mine.endObject()
        XCTAssertEqual(String(decoding: mine.bytes + [10], as: UTF8.self),
                       String(decoding: JSON.encode(Same(a: printable, b: -42)), as: UTF8.self))
    }

    func testTimestampsAreRFC3339InUTCToTheMillisecond() {
        XCTAssertEqual(JSONWriter.timestampText(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        // 2026-12-01T13:04:05.678901Z: truncated to the millisecond.
        XCTAssertEqual(JSONWriter.timestampText(Date(timeIntervalSince1970: 1_796_130_245.678901)), "2026-12-01T13:04:05.678Z")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = Date(timeIntervalSince1970: 1_700_000_000.25)
        XCTAssertEqual(JSONWriter.timestampText(date), formatter.string(from: date))
    }
}
