// The web page at `/`: static HTML, CSS and JavaScript from web/, which the EmbedOpenAPI build plugin
// compiles into this module beside openapi.yaml (`embeddedTexts`), served from routes of their own. The page
// is a client of the public JSON API and nothing else; it needs no build step and fetches nothing from
// another host, so it works on machines without internet.
import Foundation
import HTTPTransport

/// The page's files and the headers they are served with.
enum WebPage {
    /// `/` serves this one; the others are at `/web/<name>`.
    static let indexName = "index.html"

    /// The policy that lets the page load scripts, styles, images, media and API answers from its own origin
    /// only: no inline script or style, no other host, no plugins, no framing by other sites.
    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "media-src 'self'",
        "connect-src 'self'", "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// The embedded files of web/ by name.
    static let files: [String: String] = {
        var files: [String: String] = [:]
        for (path, text) in embeddedTexts where path.hasPrefix("web/") { files[String(path.dropFirst(4))] = text }
        precondition(files[indexName] != nil, "the EmbedOpenAPI plugin embeds web/index.html")
        return files
    }()

    static func contentType(_ name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": return "text/html; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "svg": return "image/svg+xml"
        default: return "text/plain; charset=utf-8"
        }
    }

    /// The file `name` with its security headers, or a 404.
    static func response(_ name: String) throws -> HTTPResponse {
        guard let text = files[name] else { throw APIError.notFound("the web page has no file '\(name)'") }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Security-Policy", value: contentSecurityPolicy)
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        // Signed URLs must not travel to anyone in a Referer; there is no other host to send one to anyway.
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        // Small files, revalidated on each load, so an upgraded server's page is seen at once.
        headers.add(name: "Cache-Control", value: "no-cache")
        return HTTPResponse(status: .ok, contentType: contentType(name), bytes: Array(text.utf8), headers: headers)
    }
}
