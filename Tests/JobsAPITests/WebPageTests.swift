// The web page's routes: `/` and its files, served from the binary exactly as they are in web/, open like
// the probes, under a Content-Security-Policy that admits the page's own origin only, with no inline script
// and nothing from another host.
import Foundation
import HTTPTestSupport
import HTTPTransport
import TestSupport
import XCTest
@testable import JobsAPI

final class WebPageTests: ServerTestCase {
    private let policy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
        + "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    func testThePageAndEachFileItNamesAreServedAsInTheRepository() throws {
        let page = try get("/")
        XCTAssertEqual(page.status, 200, page.text)
        XCTAssertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
        XCTAssertEqual(page.header("Content-Security-Policy"), policy)
        XCTAssertEqual(page.header("X-Content-Type-Options"), "nosniff")
        XCTAssertEqual(page.header("Referrer-Policy"), "no-referrer")
        let folder = SharedData.projectRoot.appendingPathComponent("web")
        XCTAssertEqual(page.text, try String(contentsOf: folder.appendingPathComponent("index.html"), encoding: .utf8),
                       "the EmbedOpenAPI plugin embeds web/index.html as it is")

        // Every file the page names is one of ours, served with its type and the same policy.
        let named = Set(matches(#"(?:src|href)="(/web/[^"]+)""#, in: page.text))
        XCTAssertEqual(named, ["/web/app.js", "/web/style.css", "/web/icon.svg"])
        let types = ["js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"]
        for path in named {
            let file = try get(path)
            XCTAssertEqual(file.status, 200, path)
            XCTAssertEqual(file.header("Content-Type"), types[String(path.split(separator: ".").last!)], path)
            XCTAssertEqual(file.header("Content-Security-Policy"), policy, path)
            XCTAssertEqual(file.text, try String(contentsOf: folder.appendingPathComponent(String(path.dropFirst(5))), encoding: .utf8), path)
        }
        let connection = try client()
        try connection.send("HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let head = try connection.response(headRequest: true)
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
    }

    func testThePageHasNoInlineScriptOrStyleAndNamesNoOtherHost() throws {
        let page = try get("/").text
        XCTAssertEqual(matches(#"<script(?![^>]*\bsrc=)[^>]*>"#, in: page), [], "every script comes from a file")
        XCTAssertEqual(matches(#"<style\b|\sstyle=|\son[a-z]+="#, in: page), [], "no inline style or event handler")
        for path in ["/", "/web/app.js", "/web/style.css", "/web/icon.svg"] {
            let text = try get(path).text
            // The SVG's XML namespace is a name, not a place anything is fetched from.
            let urls = matches(#"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}"#, in: text).filter { $0 != "http://www.w3.org" }
            XCTAssertEqual(urls, [], "\(path) names another host")
        }
    }

    func testUnknownFilesAndOtherMethodsAreRefusedAsJSON() throws {
        let missing = try get("/web/missing.js")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.errorCode, "not_found")
        XCTAssertEqual(try get("/web/").status, 404)
        let post = try exchange("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").0
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.header("Allow"), "GET")
    }

    func testTheNewRoutesAreDocumented() throws {
        let file = try String(contentsOf: SharedData.projectRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        for path in ["/:", "/web/{file}:", "/jobs/{id}/signed-urls:", "/jobs/{id}/preview/{file}:"] {
            XCTAssertTrue(file.contains("\n  \(path)\n"), path)
        }
    }

    private func matches(_ pattern: String, in text: String) -> [String] {
        let expression = try! NSRegularExpression(pattern: pattern)
        return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
            let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
            return String(text[Range(range, in: text)!])
        }
    }
}
