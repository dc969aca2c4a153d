// Frames in, a browser-playable MP4 out: H.264 in yuv420p through a confined ffmpeg fed over a pipe.
import Foundation
import Media

/// Encodes RGB frames of one size into an MP4 file as they arrive (one frame held at a time). The file appears
/// under its name only when `finish` succeeds; until then it is a hidden partial file beside it, removed on
/// failure or `cancel`.
public final class MP4Encoder {
    public let url: URL
    public let inputWidth: Int
    public let inputHeight: Int
    /// The encoded frame size: scaled down to `maxWidth` if wider, then padded to even sides (yuv420p needs them).
    public let outputWidth: Int
    public let outputHeight: Int
    private let partial: URL
    private var process: ConfinedProcess?
    private var framesWritten = 0

    /// The encoded size for frames of `width` × `height`, at most `maxWidth` wide (browsers refuse H.264
    /// wider than 4096 px).
    public static func encodedSize(width: Int, height: Int, maxWidth: Int? = nil) -> (scaled: (Int, Int), padded: (Int, Int)) {
        var scaled = (width, height)
        if let maxWidth, width > maxWidth {
            scaled = (maxWidth, max(1, Int((Double(height) * Double(maxWidth) / Double(width)).rounded())))
        }
        return (scaled, ((scaled.0 + 1) / 2 * 2, (scaled.1 + 1) / 2 * 2))
    }

    /// Starts ffmpeg for `frames` frames of `width` × `height` at `frameRate`. With `waitsForFrames`, ffmpeg
    /// is started ahead of the frames (its start, about a tenth of a CPU-second of dynamic linking and encoder
    /// set-up, then overlaps the caller's own work), and its wall-clock limit counts from the first frame.
    public init(url: URL, width: Int, height: Int, frameRate: FrameRate, frames: Int, maxWidth: Int? = nil,
                waitsForFrames: Bool = false) throws {
        self.url = url
        inputWidth = width
        inputHeight = height
        let size = Self.encodedSize(width: width, height: height, maxWidth: maxWidth)
        (outputWidth, outputHeight) = size.padded
        partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        let filter = "scale=\(size.scaled.0):\(size.scaled.1):flags=area,pad=\(outputWidth):\(outputHeight):0:0:black,"
            + "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
        let arguments = ["-nostdin", "-hide_banner", "-v", "error",
                         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)", "-r", frameRate.description,
                         "-i", "pipe:0", "-vf", filter,
                         "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                         "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                         "-movflags", "+faststart", "-f", "mp4", "file:" + partial.path]
        let pixels = outputWidth * outputHeight
        // libx264's lookahead holds a few dozen frames; 2 µs per output pixel is several times its speed here.
        let limits = ProcessLimits(wallSeconds: 60 + Double(frames) * Double(pixels) * 2e-6,
                                   memoryBytes: (1 << 30) + 80 * pixels * 4)
        let process = try ConfinedProcess(tool: "ffmpeg", arguments: arguments, limits: limits, standardInput: true)
        if waitsForFrames { process.holdClock() }
        self.process = process
    }

    deinit { cancel() }

    /// Sends one frame (of the size given at start).
    public func append(_ frame: RGBImage) throws {
        precondition(frame.width == inputWidth && frame.height == inputHeight,
                     "MP4Encoder: frame \(frame.width)x\(frame.height), expected \(inputWidth)x\(inputHeight)")
        guard let process else { preconditionFailure("MP4Encoder used after finish or cancel") }
        if framesWritten == 0 { process.resumeClock() }
        let sent = frame.pixels.withUnsafeBytes { process.writeInput($0) }
        guard sent else { throw failure(process.wait(), process) }
        framesWritten += 1
    }

    /// Tells ffmpeg that the frames have ended, without waiting: encoders ended together finish side by side.
    public func endFrames() {
        guard let process else { preconditionFailure("MP4Encoder used after finish or cancel") }
        process.resumeClock()
        process.closeInput()
    }

    /// Ends the stream (if `endFrames` has not), waits for ffmpeg and moves the file into place.
    public func finish() throws {
        guard let process else { preconditionFailure("MP4Encoder finished twice") }
        process.resumeClock()
        process.closeInput()
        let end = process.wait()
        self.process = nil
        guard end.succeeded else {
            try? FileManager.default.removeItem(at: partial)
            throw failure(end, process)
        }
        do {
            _ = try? FileManager.default.removeItem(at: url)
            try FileManager.default.moveItem(at: partial, to: url)
        } catch {
            try? FileManager.default.removeItem(at: partial)
            throw VideoError.encodeFailed(path: url.path, reason: error.localizedDescription)
        }
    }

    /// Stops ffmpeg and removes the partial file.
    public func cancel() {
        guard let process else { return }
        process.terminate()
        _ = process.wait()
        self.process = nil
        try? FileManager.default.removeItem(at: partial)
    }

    private func failure(_ end: ProcessEnd, _ process: ConfinedProcess) -> VideoError {
        try? FileManager.default.removeItem(at: partial)
        self.process = nil
        return VideoError.encodeFailed(path: url.path, reason: VideoProbe.reason(process.standardError, end))
    }
}
