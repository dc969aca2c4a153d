// The build-time tool of the EmbedMigrations and EmbedOpenAPI plugins: writes a Swift file that holds the
// exact text of some files of the package, so that the executable carries them without a resource bundle.
//
//   TextEmbedder OUTPUT ROOT ENTRY...
//
// Each ENTRY is a file (`openapi.yaml`) or every file of a folder with a given ending (`migrations/*.sql`),
// relative to ROOT. The folder is listed here, when the command runs, not when the plugin planned it, so
// that a file added to it is embedded by the next build.
import Foundation

struct EmbedError: Error, CustomStringConvertible {
    let description: String
}

/// The files an entry names, relative to `root`, sorted by name.
func files(of entry: String, root: URL) throws -> [String] {
    guard let star = entry.range(of: "/*") else { return [entry] }
    let folder = String(entry[..<star.lowerBound])
    let ending = String(entry[star.upperBound...])
    let names = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)
    return names.filter { $0.hasSuffix(ending) && !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
}

/// `text` as a Swift string literal: every character that is not plain printable ASCII is escaped, so the
/// literal's value is the file's text exactly (a multi-line literal would turn CR LF into LF).
func literal(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case " "..."~": out.unicodeScalars.append(scalar)
        default: out += "\\u{" + String(scalar.value, radix: 16) + "}"
        }
    }
    return out + "\""
}

func run(_ arguments: [String]) throws {
    guard arguments.count >= 3 else { throw EmbedError(description: "usage: TextEmbedder OUTPUT ROOT ENTRY...") }
    let output = URL(fileURLWithPath: arguments[0])
    let root = URL(fileURLWithPath: arguments[1])
    var paths: [String] = []
    for entry in arguments.dropFirst(2) {
        let found = try files(of: entry, root: root)
        guard !found.isEmpty else { throw EmbedError(description: "\(entry) names no file") }
        paths += found
    }
    var source = """
        // Generated at build time by the TextEmbedder tool from \(arguments.dropFirst(2).joined(separator: ", ")).
        // Edit those files, not this one.

        /// The embedded files: each one's path under the package root and its exact text, in path order.
        let embeddedTexts: [(path: String, text: String)] = [

        """
    for path in paths {
        let data = try Data(contentsOf: root.appendingPathComponent(path))
        guard let text = String(data: data, encoding: .utf8) else { throw EmbedError(description: "\(path) is not UTF-8") }
        source += "    (\(literal(path)), \(literal(text))),\n"
    }
    source += "]\n"
    // Written only when it changes, so that an unchanged text does not recompile its module.
    if (try? Data(contentsOf: output)) != Data(source.utf8) {
        try Data(source.utf8).write(to: output, options: .atomic)
    }
}

do {
    try run(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("TextEmbedder: \(error)\n".utf8))
    exit(1)
}
