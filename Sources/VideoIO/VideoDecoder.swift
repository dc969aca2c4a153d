// Decoded frames out of an untrusted video, one at a time: a confined ffmpeg writes raw RGB24 to a pipe.
import Foundation
import Media

/// Streams the frames of a probed video through a sink; at most one frame is held here at a time.
public enum VideoDecoder {
    /// Time allowed: a fixed start-up share plus 0.5 µs per decoded pixel (about 1 s per 1080p frame, ten
    /// times what a 2-core machine needs for H.264), so a hostile stream cannot stall a run forever.
    static func wallSeconds(frames: Int, pixels: Int) -> Double {
        30 + Double(frames) * Double(pixels) * 0.5e-6
    }

    /// Address space allowed: ffmpeg's libraries (~350 MiB mapped), its threads, and a pool of frames in flight.
    static func memoryBytes(pixels: Int) -> Int {
        (1 << 30) + 48 * pixels * 4
    }

    /// Decodes the first `frames` frames of `video` and hands each to `sink` with its index in the source.
    /// Throws `VideoError.endedEarly` when the stream stops short of `frames` (a truncated file), and
    /// `.timedOut` when the decoder outlives its wall-clock limit.
    public static func decode(_ video: VideoInfo, frames: Int, threads: Int = 2,
                              _ sink: (Int, RGBImage) throws -> Void) throws {
        guard frames > 0 else { return }
        let stream = try VideoFrameStream(video, frames: frames, threads: threads)
        while let next = try stream.next() {
            do {
                try sink(next.0, next.1)
            } catch {
                stream.cancel()
                throw error
            }
        }
    }
}

/// The first `frames` frames of a probed video, pulled one at a time: for a reader that does other work
/// between frames (the network on a window), so the decoder waits, blocked on its pipe, until the next frame
/// is asked for. Its wall-clock limit counts only the time spent waiting for frames.
public final class VideoFrameStream {
    public let video: VideoInfo
    public let frames: Int
    private var process: ConfinedProcess?
    private var decoded = 0

    public init(_ video: VideoInfo, frames: Int, threads: Int = 2) throws {
        precondition(frames > 0, "a stream of no frames")
        self.video = video
        self.frames = frames
        let pixels = video.width * video.height
        let limits = ProcessLimits(wallSeconds: VideoDecoder.wallSeconds(frames: frames, pixels: pixels),
                                   memoryBytes: VideoDecoder.memoryBytes(pixels: pixels), fileBytes: 0)
        let arguments = ["-nostdin", "-hide_banner", "-v", "error", "-threads", String(threads),
                         "-f", video.demuxer] + VideoProbe.inputConfinement + [
            "-i", VideoProbe.fileURL(video.path),
            "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", String(frames),
            // One output frame per decoded frame: no duplication or dropping to hit a constant rate.
            "-fps_mode", "passthrough",
            "-sws_flags", "bicubic+accurate_rnd+full_chroma_int",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
        ]
        process = try ConfinedProcess(tool: "ffmpeg", arguments: arguments, limits: limits)
    }

    deinit { cancel() }

    /// The next frame with its index in the source, or nil after the last of `frames`, once the decoder has
    /// ended well. Throws `VideoError.endedEarly` for a stream that stops short (a truncated file),
    /// `.timedOut` when waiting for frames outlived the limit, `.unreadable` when ffmpeg failed.
    public func next() throws -> (Int, RGBImage)? {
        guard let process else { return nil }
        if decoded < frames {
            var pixels = [UInt8](repeating: 0, count: video.width * video.height * 3)
            process.resumeClock()
            let got = pixels.withUnsafeMutableBytes { process.readOutput(into: $0) }
            process.holdClock()
            if got == pixels.count {
                decoded += 1
                return (decoded - 1, RGBImage(width: video.width, height: video.height, pixels: pixels))
            }
        }
        process.resumeClock()
        let end = process.wait()
        self.process = nil
        if case let .timedOut(seconds) = end { throw VideoError.timedOut(path: video.path, seconds: seconds) }
        guard end.succeeded else {
            throw VideoError.unreadable(path: video.path, reason: VideoProbe.reason(process.standardError, end))
        }
        guard decoded == frames else {
            throw VideoError.endedEarly(path: video.path, decoded: decoded, expected: frames)
        }
        return nil
    }

    /// Stops the decoder (a reader that wants no more frames).
    public func cancel() {
        guard let process else { return }
        process.terminate()
        _ = process.wait()
        self.process = nil
    }
}
