// The streaming multipart/form-data parser: parts, delimiters split across reads, malformed forms, fuzz loop.
import TestSupport
import XCTest
@testable import HTTPTransport

final class MultipartParserTests: XCTestCase {
    private let boundary = "----dynstereoBoundary7"

    private func form(_ parts: [(name: String, filename: String?, body: String)], epilogue: String = "") -> [UInt8] {
        var text = "preamble to ignore\r\n"
        for part in parts {
            text += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { text += "; filename=\"\(filename)\"\r\nContent-Type: application/x-tar" }
            text += "\r\n\r\n\(part.body)\r\n"
        }
        text += "--\(boundary)--\r\n\(epilogue)"
        return Array(text.utf8)
    }

    func testBoundaryFromContentType() throws {
        XCTAssertEqual(try MultipartParser.boundary(contentType: "multipart/form-data; boundary=abc"), "abc")
        XCTAssertEqual(try MultipartParser.boundary(contentType: "Multipart/Form-Data; charset=x; boundary=\"a b;c\""), "a b;c")
        XCTAssertThrowsError(try MultipartParser.boundary(contentType: "application/json"))
        XCTAssertThrowsError(try MultipartParser.boundary(contentType: "multipart/form-data"))
        XCTAssertThrowsError(try MultipartParser(boundary: String(repeating: "x", count: 71)))
        XCTAssertThrowsError(try MultipartParser(boundary: ""))
    }

    func testPartsWithFilesAndFields() {
        let bytes = form([("left", "left.tar", "LEFT\r\n--not-the-boundary\r\nDATA"), ("iters", nil, "20")], epilogue: "trailing junk")
        let transcript = multipartTranscript(boundary: boundary, [bytes])
        XCTAssertEqual(transcript, [
            "begin left left.tar application/x-tar", "data \(Array("LEFT\r\n--not-the-boundary\r\nDATA".utf8))", "partEnd",
            "begin iters - -", "data \(Array("20".utf8))", "partEnd", "end",
        ])
    }

    func testEveryOneByteSplitGivesTheSameParts() {
        let bytes = form([("left", "l.tar", String(repeating: "\r\n-", count: 40)), ("right", "r.tar", "")])
        let whole = multipartTranscript(boundary: boundary, [bytes])
        XCTAssertEqual(whole.last, "end")
        XCTAssertEqual(multipartTranscript(boundary: boundary, bytes.map { [$0] }), whole)
    }

    func testDataIsStreamedBeforeTheBodyEnds() throws {
        var parser = try MultipartParser(boundary: boundary)
        parser.receive(Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"left\"; filename=\"a\"\r\n\r\n".utf8))
        XCTAssertEqual(parser.next(), .partBegin(MultipartPartHead(name: "left", filename: "a", contentType: nil)))
        parser.receive([UInt8](repeating: 7, count: 10_000))
        guard case let .partData(data) = parser.next() else { return XCTFail("expected data") }
        // All but a delimiter's length may be released before the part ends.
        XCTAssertGreaterThanOrEqual(data.count, 10_000 - boundary.utf8.count - 4)
    }

    func testMalformedForms() {
        func lastEvent(_ text: String, limits: MultipartLimits = MultipartLimits()) -> String? {
            multipartTranscript(boundary: boundary, [Array(text.utf8)], limits: limits).last
        }
        XCTAssertEqual(lastEvent("--\(boundary)\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc"), "error \(MultipartError.truncated)")
        XCTAssertEqual(lastEvent("no delimiter at all"), "error \(MultipartError.truncated)")
        XCTAssertEqual(lastEvent("--\(boundary)x\r\n"), "error \(MultipartError.malformedDelimiter)")
        XCTAssertEqual(lastEvent("--\(boundary)\r\n\r\nabc\r\n--\(boundary)--"), "error \(MultipartError.malformedPartHeaders("no Content-Disposition"))")
        XCTAssertEqual(lastEvent("--\(boundary)\r\nContent-Type: text/plain\r\n\r\nabc\r\n--\(boundary)--"),
                       "error \(MultipartError.malformedPartHeaders("no Content-Disposition"))")
        XCTAssertEqual(lastEvent("--\(boundary)\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\n\r\n--\(boundary)--"),
                       "error \(MultipartError.malformedPartHeaders("Content-Disposition is not form-data"))")
        XCTAssertEqual(lastEvent("--\(boundary)\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\n\r\n--\(boundary)--"),
                       "error \(MultipartError.malformedPartHeaders("part without a name"))")
        var limits = MultipartLimits()
        limits.maxPartHeaderBytes = 64
        XCTAssertEqual(lastEvent("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(String(repeating: "n", count: 100))\"\r\n\r\n", limits: limits),
                       "error \(MultipartError.partHeadersTooLarge(limit: 64))")
        limits = MultipartLimits()
        limits.maxParts = 2
        let three = (0..<3).map { "--\(boundary)\r\nContent-Disposition: form-data; name=\"p\($0)\"\r\n\r\nx\r\n" }.joined() + "--\(boundary)--"
        XCTAssertEqual(lastEvent(three, limits: limits), "error \(MultipartError.tooManyParts(limit: 2))")
    }

    /// Mutated forms, each parsed whole and in three random splits: transcripts agree, every parse settles.
    /// 10,000 inputs, 40,000 parses.
    func testFuzzRandomSplitsAgree() {
        let seeds = [
            form([("left", "left.tar", "L\r\n-\r\n--"), ("right", "right.tar", String(repeating: "R", count: 100)), ("iters", nil, "7")]),
            form([("focal_px", nil, "720.5")], epilogue: "--\(boundary)\r\n"),
        ]
        var limits = MultipartLimits()
        limits.maxPartHeaderBytes = 200
        limits.maxParts = 4
        var generator = SeededGenerator(seed: 0xF0F0)
        var ends = 0
        var inputs = 0
        for round in 0..<10_000 {
            let bytes = mutate(seeds[round % seeds.count], using: &generator)
            let whole = multipartTranscript(boundary: boundary, [bytes], limits: limits)
            for _ in 0..<3 {
                let split = multipartTranscript(boundary: boundary, randomSplit(bytes, using: &generator), limits: limits)
                if split != whole {
                    XCTFail("round \(round): split transcript differs for \(Array(bytes))\nwhole: \(whole)\nsplit: \(split)")
                    return
                }
            }
            if whole.last == "end" { ends += 1 }
            inputs += 1
        }
        XCTAssertEqual(inputs, 10_000)
        XCTAssertGreaterThan(ends, 500)
        XCTAssertLessThan(ends, 9_500)
        print("Multipart parser fuzz: \(inputs) inputs, \(inputs * 4) parses, \(ends) complete forms")
    }
}
