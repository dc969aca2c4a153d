// The HTTP/1.1 request parser: every malformed case the service must refuse, and a seeded fuzz loop.
import TestSupport
import XCTest
@testable import HTTPTransport

final class HTTPRequestParserTests: XCTestCase {
    private func events(_ text: String, bodyLimit: Int = 4096, limits: HTTPParserLimits = HTTPParserLimits()) -> [String] {
        httpTranscript([Array(text.utf8)], bodyLimit: bodyLimit, limits: limits)
    }

    private func assertError(_ text: String, status: Int, code: String, bodyLimit: Int = 4096,
                             limits: HTTPParserLimits = HTTPParserLimits(), file: StaticString = #filePath, line: UInt = #line) {
        let transcript = events(text, bodyLimit: bodyLimit, limits: limits)
        XCTAssertEqual(transcript.last, "error \(status) \(code)", "transcript: \(transcript)", file: file, line: line)
    }

    func testSimpleGetKeepsAliveOnHTTP11() {
        let transcript = events("GET /jobs?status=queued HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(transcript.count, 3)
        XCTAssertTrue(transcript[0].hasPrefix("head GET /jobs?status=queued 1.1 none keepAlive=true"), transcript[0])
        XCTAssertEqual(transcript[2], "end")
    }

    func testConnectionCloseAndHTTP10Defaults() {
        XCTAssertTrue(events("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[0].contains("keepAlive=false"))
        XCTAssertTrue(events("GET / HTTP/1.0\r\nHost: a\r\n\r\n")[0].contains("keepAlive=false"))
        XCTAssertTrue(events("GET / HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n")[0].contains("keepAlive=true"))
    }

    func testPipelinedRequestsComeOutInOrder() {
        let transcript = events("GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(transcript.filter { $0.hasPrefix("head") }.map { $0.split(separator: " ")[2] }, ["/a", "/b", "/c"])
        XCTAssertEqual(transcript.filter { $0.hasPrefix("body") }, ["body ", "body xyz", "body "])
    }

    func testContentLengthBody() {
        let transcript = events("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        XCTAssertEqual(Array(transcript.suffix(2)), ["body hello world", "end"])
    }

    func testChunkedBodyWithExtensionsAndTrailers() {
        let text = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        let transcript = events(text)
        XCTAssertTrue(transcript[0].contains("chunked"))
        XCTAssertEqual(Array(transcript.suffix(2)), ["body hello world", "end"])
    }

    func testExpectContinueIsReported() {
        XCTAssertTrue(events("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")[0].contains("continue=true"))
        assertError("POST / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n", status: 417, code: "unsupported_expectation")
    }

    func testLeadingEmptyLinesAreTolerated() {
        XCTAssertTrue(events("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")[0].hasPrefix("head GET /"))
    }

    func testHostIsRequiredExactlyOnce() {
        assertError("GET / HTTP/1.1\r\n\r\n", status: 400, code: "missing_host")
        assertError("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400, code: "duplicate_host")
    }

    func testBadContentLengths() {
        for value in ["abc", "-1", "+5", "1,1", "1 1", "", "0x10", "9999999999999999999999"] {
            assertError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n", status: 400, code: "bad_content_length")
        }
        assertError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", status: 400, code: "duplicate_content_length")
    }

    func testContentLengthWithTransferEncodingIsRefused() {
        assertError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    status: 400, code: "ambiguous_framing")
        assertError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                    status: 400, code: "ambiguous_framing")
    }

    func testOnlyChunkedTransferCodingIsAccepted() {
        for value in ["gzip", "gzip, chunked", "chunked, chunked", "identity", "xchunked"] {
            assertError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n", status: 501, code: "unsupported_transfer_encoding")
        }
        assertError("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501, code: "unsupported_transfer_encoding")
    }

    func testBadChunks() {
        let prefix = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        for body in ["zz\r\n", "\r\n", " 5\r\nhello\r\n", "-5\r\n", "0x5\r\nhello\r\n", "5\r\nhelloXX", "1000000000000000\r\n", "5 x\r\nhello\r\n"] {
            assertError(prefix + body, status: 400, code: "bad_chunk")
        }
        assertError(prefix + String(repeating: "1", count: 2000), status: 400, code: "bad_chunk")
    }

    /// Found by fuzz/run http_request: a chunk-size line of exactly the limit was refused when its CR arrived
    /// in one read and its LF in the next, and accepted when both came together.
    func testChunkLineOfTheFullLengthIsAcceptedWhateverTheSplit() {
        var limits = HTTPParserLimits()
        limits.maxChunkLineBytes = 16
        let head = Array("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let line = Array("3;ext=0123456789".utf8)  // 16 bytes
        let rest = Array("\nabc\r\n0\r\n\r\n".utf8)
        let whole = httpTranscript([head + line + [13] + rest], limits: limits)
        XCTAssertEqual(whole.last, "end", "\(whole)")
        XCTAssertEqual(httpTranscript([head + line + [13], rest], limits: limits), whole)
        // One byte more is too long in both cases.
        let longer = Array("3;ext=01234567890".utf8)
        XCTAssertEqual(httpTranscript([head + longer + [13, 10] + Array("abc\r\n0\r\n\r\n".utf8)], limits: limits).last,
                       "error 400 bad_chunk")
        XCTAssertEqual(httpTranscript([head + longer + [13], [10]], limits: limits).last, "error 400 bad_chunk")
    }

    func testOversizedHeadIsRefusedBeforeItEnds() {
        var limits = HTTPParserLimits()
        limits.maxHeadBytes = 256
        assertError("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "v", count: 300))", status: 431, code: "header_too_large", limits: limits)
        assertError("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "v", count: 300))\r\n\r\n", status: 431, code: "header_too_large", limits: limits)
        let many = (0..<101).map { "X-\($0): 1\r\n" }.joined()
        assertError("GET / HTTP/1.1\r\nHost: a\r\n\(many)\r\n", status: 431, code: "header_too_large")
    }

    func testMalformedHeaderLines() {
        assertError("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", status: 400, code: "bad_header")
        assertError("GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400, code: "bad_header")
        assertError("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", status: 400, code: "bad_header")
        assertError("GET / HTTP/1.1\r\nHost: a\r\nX: a\nContent-Length: 5\r\n\r\n", status: 400, code: "bad_header")
        assertError("GET / HTTP/1.1\r\nHost: a\u{0}b\r\n\r\n", status: 400, code: "bad_header")
    }

    func testMalformedRequestLines() {
        assertError("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, code: "bad_request_line")
        assertError("GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", status: 400, code: "bad_request_line")
        assertError("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, code: "bad_request_line")
        assertError("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, code: "bad_request_line")
        assertError("GET / HTTQ/1.1\r\nHost: a\r\n\r\n", status: 400, code: "bad_request_line")
        assertError("GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505, code: "unsupported_http_version")
    }

    func testBodyLimits() {
        assertError("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", status: 413, code: "body_too_large", bodyLimit: 10)
        assertError("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n", status: 413,
                    code: "body_too_large", bodyLimit: 10)
    }

    func testTruncatedRequestIsReportedAtEnd() {
        XCTAssertEqual(events("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc").last, "error 400 truncated_request")
        XCTAssertEqual(events("GET / HTTP/1.1\r\nHo").last, "error 400 truncated_request")
        XCTAssertEqual(events("GET / HTTP/1.1\r\nHost: a\r\n\r\n").last, "end")
    }

    func testErrorIsFinal() {
        var parser = HTTPRequestParser()
        parser.receive(Array("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        guard case .error(.missingHost) = parser.next() else { return XCTFail("expected missing host") }
        guard case .error(.missingHost) = parser.next() else { return XCTFail("error should repeat") }
    }

    /// Mutated valid requests, each parsed whole and in three random splits: the transcripts must agree and
    /// every parse must settle. 20,000 inputs, 80,000 parses.
    func testFuzzRandomSplitsAgree() {
        let seeds: [String] = [
            "GET /jobs/1 HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /jobs HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: b\r\n\r\n",
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;e=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: 1\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nX-Long: \(String(repeating: "z", count: 200))\r\n\r\n",
        ]
        var limits = HTTPParserLimits()
        limits.maxHeadBytes = 512
        var generator = SeededGenerator(seed: 0xD15C0)
        var inputs = 0
        var outcomes: [String: Int] = [:]
        for round in 0..<20_000 {
            let seed = Array(seeds[round % seeds.count].utf8)
            let bytes = round % 10 == 9
                ? (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                : mutate(seed, using: &generator)
            let whole = httpTranscript([bytes], bodyLimit: 64, limits: limits)
            for _ in 0..<3 {
                let split = httpTranscript(randomSplit(bytes, using: &generator), bodyLimit: 64, limits: limits)
                if split != whole {
                    XCTFail("round \(round): split transcript differs for \(Array(bytes))\nwhole: \(whole)\nsplit: \(split)")
                    return
                }
            }
            inputs += 1
            outcomes[whole.last.map { String($0.prefix(9)) } ?? "nothing", default: 0] += 1
        }
        XCTAssertEqual(inputs, 20_000)
        // The mutations must reach both outcomes, or the loop is not exercising the error paths.
        XCTAssertGreaterThan(outcomes["end", default: 0], 100, "\(outcomes)")
        XCTAssertGreaterThan(outcomes.filter { $0.key.hasPrefix("error 400") }.values.reduce(0, +), 1000, "\(outcomes)")
        print("HTTP parser fuzz: \(inputs) inputs, \(inputs * 4) parses, outcomes \(outcomes.sorted { $0.key < $1.key })")
    }
}
