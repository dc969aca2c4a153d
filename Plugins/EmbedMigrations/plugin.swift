// Embeds migrations/*.sql into the target that uses this plugin (JobQueue) as `embeddedTexts`.
import Foundation
import PackagePlugin

/// Runs TextEmbedder over `migrations/*.sql` before the target compiles.
///
/// SwiftPM runs a build-tool plugin only when it plans the build (the package's structure changed), so
/// the command lists the folder itself when it runs, and its inputs are the folder (adding or removing a
/// file changes it) and each file present at planning (an edit). MigrationFileTests catches the one case
/// this misses, an edit to a file added since the last planning; `touch Package.swift` replans.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let folder = root.appendingPathComponent("migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".sql") }.sorted().map { folder.appendingPathComponent($0) }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("EmbeddedMigrations.swift")
        return [.buildCommand(displayName: "Embedding migrations/*.sql in \(target.name)",
                              executable: try context.tool(named: "TextEmbedder").url,
                              arguments: [output.path, root.path, "migrations/*.sql"],
                              inputFiles: [folder] + files, outputFiles: [output])]
    }
}
