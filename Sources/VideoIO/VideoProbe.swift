// What a video file holds, learnt without decoding it: ffprobe reads the container and counts packets.
import Foundation

/// A frame rate as the container states it (`30000/1001`), kept exact so left and right compare equal.
public struct FrameRate: Equatable, Sendable, CustomStringConvertible {
    public let numerator: Int
    public let denominator: Int

    /// A positive rate in lowest terms; nil for ffprobe's `0/0` (unknown) or anything not positive.
    public init?(numerator: Int, denominator: Int) {
        guard numerator > 0, denominator > 0 else { return nil }
        var (a, b) = (numerator, denominator)
        while b != 0 { (a, b) = (b, a % b) }
        self.numerator = numerator / a
        self.denominator = denominator / a
    }

    /// Parses ffprobe's `N/D` (or a plain number of frames per second).
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        if parts.count == 2, let n = Int(parts[0]), let d = Int(parts[1]) {
            self.init(numerator: n, denominator: d)
        } else if parts.count == 1, let value = Double(text), value.isFinite, value > 0, value < 1e6 {
            // Whole thousandths are exact enough for any rate a user types (`--fps 29.97`).
            self.init(numerator: Int((value * 1000).rounded()), denominator: 1000)
        } else {
            return nil
        }
    }

    /// This rate slowed by keeping one frame in `step`.
    public func divided(by step: Int) -> FrameRate {
        FrameRate(numerator: numerator, denominator: denominator * step)!  // both stay positive
    }

    public var framesPerSecond: Double { Double(numerator) / Double(denominator) }

    /// `N/D`, the form ffmpeg's `-r` takes.
    public var description: String { "\(numerator)/\(denominator)" }
}

/// The first video stream of a file and its container, as ffprobe reports them.
public struct VideoInfo: Equatable, Sendable {
    public let path: String
    /// The demuxer that opened it (`mov`, `matroska`, `avi`); the decoder is forced to the same one.
    public let demuxer: String
    public let codec: String
    public let width: Int
    public let height: Int
    /// Video packets in the file, counted by reading the container (one per frame for the listed codecs).
    public let frameCount: Int
    /// The stream's frame rate, when the container states one.
    public let frameRate: FrameRate?
}

/// Why a video cannot be used, worded for its user.
public enum VideoError: Error, CustomStringConvertible, Equatable {
    /// ffprobe or ffmpeg could not open or read it; `reason` is ffmpeg's own last line.
    case unreadable(path: String, reason: String)
    case noVideoStream(path: String)
    case noFrames(path: String)
    case invalidSize(path: String, width: Int, height: Int)
    case tooLarge(path: String, width: Int, height: Int, maxPixels: Int)
    case tooManyFrames(path: String, count: Int, limit: Int)
    case timedOut(path: String, seconds: Double)
    /// The decoder produced fewer frames than the container counted (a truncated or corrupt stream).
    case endedEarly(path: String, decoded: Int, expected: Int)
    case mismatch(String)
    case badLayout(String)
    case encodeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): not a video ffmpeg can read (\(reason))"
        case let .noVideoStream(path): return "\(path): has no video stream"
        case let .noFrames(path): return "\(path): the video has no frames"
        case let .invalidSize(path, width, height): return "\(path): the video declares no valid frame size (\(width)x\(height))"
        case let .tooLarge(path, width, height, maxPixels):
            return "\(path): frames of \(width)x\(height) exceed the limit of \(maxPixels) pixels"
        case let .tooManyFrames(path, count, limit): return "\(path): \(count) frames selected, more than the limit of \(limit)"
        case let .timedOut(path, seconds): return "\(path): decoding took longer than its limit of \(Int(seconds)) s and was stopped"
        case let .endedEarly(path, decoded, expected):
            return "\(path): the video ends after \(decoded) decodable frames but its container counts \(expected) (truncated or corrupt?)"
        case let .mismatch(message): return message
        case let .badLayout(message): return message
        case let .encodeFailed(path, reason): return "writing \(path) failed: \(reason)"
        }
    }
}

/// Runs ffprobe on local files only, through the containers it names.
public enum VideoProbe {
    /// The demuxers a video may be opened with: MP4/MOV (`mov`), MKV/WebM (`matroska`), AVI. Playlists (hls),
    /// concat lists, image sequences and everything else that can name another file are refused by ffmpeg itself.
    public static let allowedDemuxers = ["mov", "matroska", "avi"]

    /// The options that keep every ffmpeg/ffprobe input local and inside the allowed containers.
    static var inputConfinement: [String] {
        ["-protocol_whitelist", "file", "-format_whitelist", allowedDemuxers.joined(separator: ",")]
    }

    /// `file:` plus an absolute path, so a name like `concat:a|b` or `http://…` is only ever a file name.
    static func fileURL(_ path: String) -> String {
        "file:" + URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Probes `path`. Counting packets reads the whole container but decodes nothing; the time allowed grows
    /// with the file's size.
    public static func probe(_ path: String, maxPixels: Int = 100_000_000) throws -> VideoInfo {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw VideoError.unreadable(path: path, reason: "no such file")
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
        let limits = ProcessLimits(wallSeconds: 30 + Double(size) / 20e6, memoryBytes: 1 << 30, fileBytes: 0)
        let arguments = ["-v", "error", "-hide_banner", "-threads", "1"] + inputConfinement + [
            "-count_packets", "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,width,height,r_frame_rate,avg_frame_rate,nb_read_packets:format=format_name",
            "-of", "json", fileURL(path),
        ]
        let (output, end, stderr) = try ConfinedProcess.run(tool: "ffprobe", arguments: arguments, limits: limits)
        if case let .timedOut(seconds) = end { throw VideoError.timedOut(path: path, seconds: seconds) }
        guard end.succeeded else {
            throw VideoError.unreadable(path: path, reason: reason(stderr, end))
        }
        struct Report: Decodable {
            struct Stream: Decodable {
                let codec_name: String?
                let width: Int?
                let height: Int?
                let r_frame_rate: String?
                let avg_frame_rate: String?
                let nb_read_packets: String?
            }
            struct Format: Decodable { let format_name: String? }
            let streams: [Stream]?
            let format: Format?
        }
        guard let report = try? JSONDecoder().decode(Report.self, from: output) else {
            throw VideoError.unreadable(path: path, reason: "ffprobe's report could not be read")
        }
        guard let stream = report.streams?.first else { throw VideoError.noVideoStream(path: path) }
        let formats = (report.format?.format_name ?? "").split(separator: ",").map(String.init)
        guard let demuxer = formats.first, allowedDemuxers.contains(demuxer) else {
            throw VideoError.unreadable(path: path, reason: "container \(report.format?.format_name ?? "unknown") is not MP4/MOV, MKV or AVI")
        }
        let width = stream.width ?? 0, height = stream.height ?? 0
        guard width > 0, height > 0 else { throw VideoError.invalidSize(path: path, width: width, height: height) }
        guard width.multipliedReportingOverflow(by: height).partialValue <= maxPixels, width <= 1 << 20, height <= 1 << 20 else {
            throw VideoError.tooLarge(path: path, width: width, height: height, maxPixels: maxPixels)
        }
        let count = Int(stream.nb_read_packets ?? "") ?? 0
        guard count > 0 else { throw VideoError.noFrames(path: path) }
        let rate = stream.r_frame_rate.flatMap(FrameRate.init) ?? stream.avg_frame_rate.flatMap(FrameRate.init)
        return VideoInfo(path: path, demuxer: demuxer, codec: stream.codec_name ?? "unknown", width: width,
                         height: height, frameCount: count, frameRate: rate)
    }

    /// ffmpeg's verdict for a user: its last line of standard error, or how it ended.
    static func reason(_ stderr: String, _ end: ProcessEnd) -> String {
        // "[hls @ 0x55…] Format not on whitelist 'mov,matroska,avi'": a playlist, a concat list or the like.
        if let refused = stderr.split(whereSeparator: \.isNewline).first(where: { $0.contains("not on whitelist") }),
           refused.hasPrefix("["), let at = refused.firstIndex(of: "@") {
            let format = refused[refused.index(after: refused.startIndex)..<at].trimmingCharacters(in: .whitespaces)
            return "it is '\(format)', not an MP4/MOV, MKV or AVI container; those are the only ones read"
        }
        // ffmpeg prefixes lines with "[demuxer @ 0x…] " or the URL it was given; the caller names the file.
        // Its last line is often generic ("Invalid data found when processing input"); the line before it
        // says why ("moov atom not found"), so both are kept.
        var lines: [String] = []
        for raw in stderr.split(whereSeparator: \.isNewline) {
            var line = Substring(raw)
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") { line = line[line.index(after: close)...] }
            if line.hasPrefix("file:"), let colon = line.dropFirst(5).firstIndex(of: ":") { line = line[line.index(after: colon)...] }
            let text = line.trimmingCharacters(in: .whitespaces)
            if !text.isEmpty && lines.last != text { lines.append(text) }
        }
        let cleaned = lines.suffix(2).joined(separator: "; ")
        switch end {
        case .exited: return cleaned.isEmpty ? "ffmpeg failed" : cleaned
        case let .signalled(signal): return cleaned.isEmpty ? "ffmpeg was killed by signal \(signal)" : cleaned
        case let .timedOut(seconds): return "stopped after \(Int(seconds)) s"
        }
    }
}
