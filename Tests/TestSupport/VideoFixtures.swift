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

/// Writes files made to hurt a video decoder into a folder: `truncated.mp4`, `truncated-faststart.mp4`,
/// `playlist.mp4` (HLS naming /etc/passwd), `concat.mkv` (a concat list naming it), `huge.avi` (declares
/// 100000x100000), `large.avi` (16000x16000), `zero-frames.avi` and `empty.mkv`.
public enum HostileVideos {
    public static func make(in folder: URL) throws {
        func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
        let source = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-frames:v", "30", "-c:v", "libx264"]
        // An MP4 cut in half: its index (moov) is at the end, so nothing is left to read.
        try VideoFixtures.ffmpeg(source + [url("whole.mp4").path])
        let whole = try Data(contentsOf: url("whole.mp4"))
        try whole.prefix(whole.count / 2).write(to: url("truncated.mp4"))
        // The same with the index in front: the container promises 30 frames, the data holds a few.
        try VideoFixtures.ffmpeg(source + ["-movflags", "+faststart", url("whole-faststart.mp4").path])
        let faststart = try Data(contentsOf: url("whole-faststart.mp4"))
        try faststart.prefix(faststart.count / 2).write(to: url("truncated-faststart.mp4"))
        for name in ["whole.mp4", "whole-faststart.mp4"] { try FileManager.default.removeItem(at: url(name)) }
        // Text files under video names that would make ffmpeg read /etc/passwd if their demuxers were allowed.
        try "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n"
            .write(to: url("playlist.mp4"), atomically: true, encoding: .utf8)
        try "ffconcat version 1.0\nfile '/etc/passwd'\n".write(to: url("concat.mkv"), atomically: true, encoding: .utf8)
        // Raw-video AVIs whose headers declare 100000x100000 and 16000x16000 frames (the data is 64x48).
        try VideoFixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "3",
                                  "-c:v", "rawvideo", "-pix_fmt", "bgr24", url("small.avi").path])
        let small = try Data(contentsOf: url("small.avi"))
        try declaringSize(small, width: 100_000, height: 100_000).write(to: url("huge.avi"))
        try declaringSize(small, width: 16_000, height: 16_000).write(to: url("large.avi"))
        try FileManager.default.removeItem(at: url("small.avi"))
        // A video stream with no frames at all.
        try VideoFixtures.ffmpeg(["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "0", "-c:v", "mjpeg",
                                  url("zero-frames.avi").path])
        try Data().write(to: url("empty.mkv"))
    }

    /// An AVI with the frame size in its main header (avih: width at +32, height at +36 of the chunk's data)
    /// and its stream format (strf: BITMAPINFOHEADER width at +4, height at +8) rewritten.
    public static func declaringSize(_ avi: Data, width: Int32, height: Int32) -> Data {
        var bytes = [UInt8](avi)
        func patch(_ offset: Int, _ value: Int32) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        func chunk(_ tag: String) -> Int {
            let needle = Array(tag.utf8)
            return (0..<(bytes.count - 4)).first { Array(bytes[$0..<$0 + 4]) == needle }! + 8  // the fixture has both
        }
        let header = chunk("avih"), format = chunk("strf")
        patch(header + 32, width)
        patch(header + 36, height)
        patch(format + 4, width)
        patch(format + 8, height)
        return Data(bytes)
    }
}
