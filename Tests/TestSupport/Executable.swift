// Running the built `dynstereo` executable from tests.
import Foundation

/// The `dynstereo` binary that `swift test` built beside the test bundle.
public enum Executable {
    public struct Result {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs `dynstereo arguments...` to completion and captures its output.
    public static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let process = Process()
        process.executableURL = try BuiltProducts.dynstereo()
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Drain stderr on another thread while stdout is read here, so a chatty child never blocks on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Where the built executables are: beside the test bundle in SwiftPM's build folder.
public enum BuiltProducts {
    public static var directory: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("dynstereo").path) }
            ?? candidates[0]
    }

    /// The `dynstereo` executable; throws if `swift build` has not produced it.
    public static func dynstereo() throws -> URL {
        let url = directory.appendingPathComponent("dynstereo")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw TestDatabaseError(description: "no dynstereo executable at \(url.path); build the package first")
        }
        return url
    }
}

