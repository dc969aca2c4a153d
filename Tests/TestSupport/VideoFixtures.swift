// Test videos made on the spot with the system's ffmpeg (trusted here: the tests choose every input).
import Foundation

/// Runs `ffmpeg` and `ffprobe` for fixtures and for checking what the product wrote.
public enum VideoFixtures {
    /// `ffmpeg -y -loglevel error arguments...`; throws with ffmpeg's message when it fails.
    public static func ffmpeg(_ arguments: [String]) throws {
        _ = try tool("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments)
    }

    /// `ffprobe` on the first video stream of `path`, decoding every frame to count them:
    /// codec, width, height, frame count, pixel format and frame rate.
    public static func probe(_ path: String) throws -> (codec: String, width: Int, height: Int, frames: Int, pixelFormat: String, rate: String) {
        let output = try tool("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                          "stream=codec_name,width,height,nb_read_frames,pix_fmt,r_frame_rate",
                                          "-of", "default=noprint_wrappers=1", path])
        var fields: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        return (fields["codec_name"] ?? "", Int(fields["width"] ?? "") ?? 0, Int(fields["height"] ?? "") ?? 0,
                Int(fields["nb_read_frames"] ?? "") ?? 0, fields["pix_fmt"] ?? "", fields["r_frame_rate"] ?? "")
    }

    /// A lossless FFV1 Matroska video (RGB, so decoding gives back the PNGs' exact bytes) of the PNG frames
    /// `folder/%04d.png`, at `rate` frames per second.
    public static func losslessVideo(of folder: URL, to target: URL, rate: Int = 30) throws {
        try ffmpeg(["-framerate", String(rate), "-i", folder.appendingPathComponent("%04d.png").path,
                    "-c:v", "ffv1", "-pix_fmt", "bgr0", target.path])
    }

    /// The processes, other than this one, whose command line mentions `fragment` (a fixture's path):
    /// a decoder left running would show up here.
    public static func processes(mentioning fragment: String) -> [String] {
        let me = String(ProcessInfo.processInfo.processIdentifier)
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { $0.allSatisfy(\.isNumber) } ?? []
        return pids.compactMap { pid in
            guard pid != me, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return line.contains(fragment) ? "\(pid): \(line)" : nil
        }
    }

    private static func tool(_ name: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/" + name)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let errors = Box()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errors.data = err.fileHandleForReading.readDataToEndOfFile() }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestDatabaseError(description: "\(name) \(arguments.joined(separator: " ")) failed: \(String(decoding: errors.data, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
