// The per-request parsing shaped for speed against the plain ways it replaced: routing by bytes against
// splitting by Character with Foundation's percent-decoding, the hand-read UUID against UUID(uuidString:),
// the bearer key read by bytes against Foundation's trimming, and header names compared by bytes against
// caseInsensitiveCompare.
import Foundation
import HTTPTransport
import XCTest
@testable import JobsAPI

final class RouteParsingTests: XCTestCase {
    /// The segmenting as it was: split by Character, every segment percent-decoded by Foundation.
    private func referenceSegments(_ path: Substring) -> [String]? {
        let decoded = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { String($0).removingPercentEncoding }
        guard decoded.allSatisfy({ $0 != nil }) else { return nil }
        return decoded.map { $0! }
    }

    func testPathSegmentsAreTheCharacterSplitsFoundationDecodes() {
        let id = UUID().uuidString.lowercased()
        var paths = [
            "/", "/healthz", "/jobs", "/jobs/", "/jobs/\(id)", "/jobs/\(id)/disparity/0007.png", "/jobs/\(id)/preview/img%20a.png",
            "/jobs/\(id)/disparity/a%2Fb.png", "/jobs/\(id)/disparity/%ZZ.png", "/jobs/%41%42", "/jobs/%", "/jobs/%4", "//jobs", "*", "",
            "/jobs/\(id)/disparity/%C3%A9t%C3%A9.png", "/jobs/\(id)/color/%FF.png", "/jobs/%C3", "/jobs/é/x", "/a//b/", "/%2F%2f",
        ]
        // And random paths over an alphabet of what matters: separators, escapes, hex digits, other bytes.
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("/%/%0123456789abcdefABCDEFgz.-_ é~")
        for _ in 0..<2_000 {
            paths.append("/" + String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        for path in paths {
            XCTAssertEqual(JobsHTTPApplication.pathSegments(path[...]), referenceSegments(path[...]), path)
        }
        guard case let .failure(refusal) = JobsHTTPApplication.route(method: "GET", path: "/jobs/%ZZ") else {
            return XCTFail("a bad escape is refused")
        }
        XCTAssertEqual(refusal.code, "bad_request")
        XCTAssertEqual(try JobsHTTPApplication.route(method: "GET", path: "/jobs/\(id)/preview/img%20a.png").get(),
                       .preview(UUID(uuidString: id)!, "img a"))
    }

    func testTheHandReadUUIDIsFoundationsWhereverItReadsOne() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let id = UUID()
            for text in [id.uuidString, id.uuidString.lowercased(), String(id.uuidString.map { Bool.random(using: &generator) ? Character($0.lowercased()) : $0 })] {
                XCTAssertEqual(JobsHTTPApplication.canonicalUUID(text), id, text)
                XCTAssertEqual(JobsHTTPApplication.canonicalUUID(text), UUID(uuidString: text), text)
            }
        }
        let text = UUID().uuidString
        for bad in ["", "x", String(text.dropLast()), text + "0", text.replacingOccurrences(of: "-", with: ""),
                    "g" + text.dropFirst(), String(text.prefix(8)) + "_" + text.dropFirst(9), " " + text.dropFirst()] {
            XCTAssertNil(JobsHTTPApplication.canonicalUUID(bad), bad)
        }
    }

    func testTheBearerKeyIsReadAsByCharactersAndFoundationsTrimming() {
        var headers = ["Bearer abc", "bearer abc", "BEARER abc ", "Bearer  abc", " Bearer abc", "Bearer", "Bearer ", "Bearer \tabc\t",
                       "Basic abc", "Bearerx abc", "Bear abc", "Bearer a b", "Bearer é", "Bearer abc\u{00A0}", "Bé abc", "", " ",
                       "bEaReR dGVzdA-_", "Bearer\tabc", "Bearer  ", "Bearer \t "]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("Bb eEaArR\tk-_é\u{00A0}")
        for _ in 0..<3_000 {
            headers.append(String((0..<Int.random(in: 0...14, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        for header in headers {
            XCTAssertEqual(BearerAuthenticator.bearerKey(header), BearerAuthenticator.bearerKeyByCharacters(header), "'\(header)'")
        }
        XCTAssertEqual(BearerAuthenticator.bearerKey("Bearer  k1 "), "k1")
    }

    func testHeaderNamesCompareAsCaseInsensitiveCompareDoesForTokens() {
        let names = ["Authorization", "authorization", "AUTHORIZATION", "Content-Type", "content-type", "Content-Typf",
                     "Host", "host", "hosts", "", "X-a", "x-A", "x-@", "x-`", "X-[", "x-{", "Range", "range", "ra nge"]
        for a in names {
            for b in names {
                XCTAssertEqual(HTTPHeaders.sameName(a, b), a.caseInsensitiveCompare(b) == .orderedSame, "'\(a)' vs '\(b)'")
            }
        }
    }
}
