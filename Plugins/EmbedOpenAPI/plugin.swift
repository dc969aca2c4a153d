// Embeds openapi.yaml into the target that uses this plugin (the one serving GET /openapi.yaml) as `embeddedTexts`.
import Foundation
import PackagePlugin

/// Runs TextEmbedder over `openapi.yaml` before the target compiles, again whenever the file changes.
@main
struct EmbedOpenAPI: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("EmbeddedOpenAPI.swift")
        return [.buildCommand(displayName: "Embedding openapi.yaml in \(target.name)",
                              executable: try context.tool(named: "TextEmbedder").url,
                              arguments: [output.path, root.path, "openapi.yaml"],
                              inputFiles: [root.appendingPathComponent("openapi.yaml")], outputFiles: [output])]
    }
}
