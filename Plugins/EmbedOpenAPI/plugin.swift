// Embeds the files the API serves as they are into the target that serves them (JobsAPI) as `embeddedTexts`:
// openapi.yaml (GET /openapi.yaml) and the web page's files, web/*.html, *.css, *.js and *.svg (GET / and
// /web/...).
import Foundation
import PackagePlugin

/// Runs TextEmbedder over `openapi.yaml` and `web/` before the target compiles, again whenever one changes.
///
/// As for migrations/ (EmbedMigrations), the tool lists web/ itself when it runs, and the inputs are the
/// folder (a file added or removed) and each file present when the build was planned (an edit).
@main
struct EmbedOpenAPI: BuildToolPlugin {
    static let webEntries = ["web/*.html", "web/*.css", "web/*.js", "web/*.svg"]

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let web = root.appendingPathComponent("web")
        let webFiles = try FileManager.default.contentsOfDirectory(atPath: web.path)
            .filter { name in Self.webEntries.contains { name.hasSuffix(String($0.dropFirst("web/*".count))) } }
            .sorted().map { web.appendingPathComponent($0) }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("EmbeddedOpenAPI.swift")
        return [.buildCommand(displayName: "Embedding openapi.yaml and web/ in \(target.name)",
                              executable: try context.tool(named: "TextEmbedder").url,
                              arguments: [output.path, root.path, "openapi.yaml"] + Self.webEntries,
                              inputFiles: [root.appendingPathComponent("openapi.yaml"), web] + webFiles,
                              outputFiles: [output])]
    }
}
