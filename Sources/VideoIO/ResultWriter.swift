// The chosen result kinds of a run, written into a folder frame by frame in two passes: what each frame gives
// on its own as it comes, then what needs the whole video (the colour scale) from disparity.npy read back.
import Foundation
import Media
import TensorKernels
import VideoPlan

/// Writes a disparity video's results, only the kinds asked for, streaming, in the service's encodings and with
/// its colour scale, so `dynstereo infer` writes the files a job stores, byte for byte.
///
/// First pass (`add`, frame by frame in order, as the network's windows finish): `disparity.npy` (its header
/// first, with the known frame count, then each frame's values), `disparity/`, `depth/`, `points/`, and each
/// frame's disparity range. Second pass (`finish`): the video's one colour scale, from the smallest to the
/// largest finite disparity of any frame (`FrameRendering.scale`, as the finishing step of a job), then
/// `color/`, `video/` and the two MP4s, one frame at a time, reading the disparity back from the file the first
/// pass wrote. Memory holds one frame's pictures however long the video.
public final class ResultWriter {
    /// `video.mp4` is at most this wide: browsers refuse wider H.264.
    public static let maxVideoWidth = 4096

    public let directory: URL
    public let kinds: Set<ResultKind>
    public let frames: Int
    public let width: Int
    public let height: Int
    private let camera: StereoCamera?
    /// Where the first pass writes disparity.npy: a hidden partial file, renamed (or, when `npy` was not asked
    /// for, removed) at the end.
    private let partial: URL
    private var handle: FileHandle?
    private let headerBytes: Int
    private var names: [String] = []
    private var lower: Float?, upper: Float?
    private(set) public var written: [String] = []
    /// The MP4s' encoders when started ahead of the run (`startVideos`), until the second pass ends them.
    private var startedVideos: StartedVideos?

    /// Whether `finish` renders anything (colour, video frames or MP4s).
    public var needsColor: Bool { !kinds.isDisjoint(with: [.color, .video, .colorMP4, .videoMP4]) }
    /// Whether `finish` needs the left views again (for `video/` and `video.mp4`).
    public var needsLeftForColor: Bool { !kinds.isDisjoint(with: [.video, .videoMP4]) }
    /// Whether `add` needs the left view (for `points/`).
    public var needsLeftForFrames: Bool { kinds.contains(.points) }

    /// Starts a run of `frames` frames of `width` × `height` into `directory` (created). `camera` is required
    /// for depth and points. `videos`, started for the same folder, kinds and frames, gives the MP4s.
    public init(directory: URL, kinds: Set<ResultKind>, camera: StereoCamera?, frames: Int, width: Int, height: Int,
                videos: StartedVideos? = nil) throws {
        precondition(frames > 0 && width > 0 && height > 0, "a video of \(frames) frames of \(width)x\(height)")
        precondition(camera != nil || !kinds.contains(where: \.needsCalibration), "depth and points need a camera")
        self.directory = directory
        self.kinds = kinds
        self.camera = camera
        self.frames = frames
        self.width = width
        self.height = height
        if let videos {
            precondition(videos.directory == directory && videos.kinds == kinds && videos.frames == frames,
                         "the videos were started for this run's folder, kinds and frames")
        }
        startedVideos = videos
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw MediaError.unreadable(path: directory.path, reason: "cannot create it: \(error.localizedDescription)")
        }
        partial = directory.appendingPathComponent(".\(ResultFiles.disparityArrayPath).\(UUID().uuidString).partial")
        let header = NPY.header(shape: [frames, height, width])
        headerBytes = header.count
        guard FileManager.default.createFile(atPath: partial.path, contents: header),
              let handle = FileHandle(forWritingAtPath: partial.path) else {
            throw MediaError.unreadable(path: partial.path, reason: "cannot create it")
        }
        _ = try? handle.seekToEnd()
        self.handle = handle
    }

    deinit {
        try? handle?.close()
        try? FileManager.default.removeItem(at: partial)
    }

    private func put(_ data: Data, _ path: String) throws {
        let url = directory.appendingPathComponent(path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        } catch {
            throw MediaError.unreadable(path: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
        written.append(path)
    }

    /// First pass: the next frame's disparity (H × W, row-major), named `name` (an input frame's name), with its
    /// left view when `needsLeftForFrames`.
    public func add(name: String, disparity frame: ArraySlice<Float>, left: RGBImage?) throws {
        precondition(names.count < frames && frame.count == width * height, "frame \(names.count) of \(frames), \(frame.count) values")
        guard let handle else { preconditionFailure("ResultWriter.add after finish") }
        let stem = try ResultFrames.stem(name)
        names.append(stem)
        do {
            // The machines Swift runs on here are little-endian, as .npy's '<f4' wants.
            try frame.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        } catch {
            throw MediaError.unreadable(path: partial.path, reason: "cannot write: \(error.localizedDescription)")
        }
        let range = FrameRendering.range(frame)
        if !range.min.isNaN {
            lower = min(lower ?? range.min, range.min)
            upper = max(upper ?? range.max, range.max)
        }
        if kinds.contains(.disparity) {
            try put(FrameRendering.disparityPNG(frame, width: width, height: height), "disparity/\(stem).png")
        }
        if let camera, kinds.contains(.depth),
           let depth = try FrameRendering.depthPNG(frame, width: width, height: height, focalPx: camera.focalPx, baselineM: camera.baselineM) {
            try put(depth, "depth/\(stem).png")
        }
        if let camera, kinds.contains(.points) {
            guard let left else { preconditionFailure("points/ needs the left view") }
            try put(PointCloud.ply(disparity: frame, left: left, camera: camera), "points/\(stem).ply")
        }
    }

    /// The MP4 encoders of a run (`color.mp4`, `video.mp4`, those its kinds ask for).
    public struct StartedVideos {
        fileprivate let directory: URL
        fileprivate let kinds: Set<ResultKind>
        fileprivate let frames: Int
        fileprivate let frameRate: FrameRate
        fileprivate let color: MP4Encoder?
        fileprivate let sideBySide: MP4Encoder?
    }

    /// Starts the encoders of the MP4s that `kinds` asks for, for a run into `directory` at `frameRate`, before
    /// anything of the run exists: ffmpeg's start then overlaps the caller's work (a checkpoint loading on one
    /// core) instead of following the network, and a run refused before its writer is made leaves nothing
    /// (dropping the value stops them). They wait for the second pass without a wall-clock limit running.
    /// Nothing is written into `directory` until the first frame, by when the writer has made it: ffmpeg opens
    /// its output once the first frame is encoded.
    public static func startVideos(directory: URL, kinds: Set<ResultKind>, frames: Int, width: Int, height: Int,
                                   frameRate: FrameRate) throws -> StartedVideos {
        try encoders(directory: directory, kinds: kinds, frames: frames, width: width, height: height,
                     frameRate: frameRate, waitsForFrames: true)
    }

    private static func encoders(directory: URL, kinds: Set<ResultKind>, frames: Int, width: Int, height: Int,
                                 frameRate: FrameRate, waitsForFrames: Bool) throws -> StartedVideos {
        let color = kinds.contains(.colorMP4)
            ? try MP4Encoder(url: directory.appendingPathComponent("color.mp4"), width: width, height: height,
                             frameRate: frameRate, frames: frames, waitsForFrames: waitsForFrames) : nil
        let sideBySide = kinds.contains(.videoMP4)
            ? try MP4Encoder(url: directory.appendingPathComponent("video.mp4"), width: 2 * width, height: height,
                             frameRate: frameRate, frames: frames, maxWidth: maxVideoWidth, waitsForFrames: waitsForFrames) : nil
        return StartedVideos(directory: directory, kinds: kinds, frames: frames, frameRate: frameRate,
                             color: color, sideBySide: sideBySide)
    }

    /// The colour scale of the video: the smallest to the largest finite disparity of the frames added so far.
    public var colorScale: ColorMap.Scale { FrameRendering.scale(lower: lower, upper: upper) }

    /// Ends the first pass and runs the second: `color/`, `video/`, `color.mp4`, `video.mp4` at `frameRate`,
    /// reading each frame's disparity back from the file the first pass wrote. `left()` gives the next frame's
    /// left view (asked once per frame, in order, only when `needsLeftForColor`); `progress(done, total)`
    /// follows the frames. Returns every path written, relative to `directory`.
    @discardableResult
    public func finish(frameRate: FrameRate, left: () throws -> RGBImage?,
                       progress: (Int, Int) -> Void = { _, _ in }) throws -> [String] {
        precondition(names.count == frames, "\(names.count) frames added of \(frames)")
        guard let handle else { preconditionFailure("ResultWriter finished twice") }
        do { try handle.close() } catch {
            throw MediaError.unreadable(path: partial.path, reason: "cannot write: \(error.localizedDescription)")
        }
        self.handle = nil
        if needsColor { try render(frameRate: frameRate, left: left, progress: progress) }
        if kinds.contains(.npy) {
            let url = directory.appendingPathComponent(ResultFiles.disparityArrayPath)
            do {
                _ = try? FileManager.default.removeItem(at: url)
                try FileManager.default.moveItem(at: partial, to: url)
            } catch {
                throw MediaError.unreadable(path: url.path, reason: "cannot write: \(error.localizedDescription)")
            }
            written.insert(ResultFiles.disparityArrayPath, at: 0)
        }
        return written
    }

    private func render(frameRate: FrameRate, left: () throws -> RGBImage?, progress: (Int, Int) -> Void) throws {
        let scale = colorScale
        let videos = try startedVideos ?? Self.encoders(directory: directory, kinds: kinds, frames: frames, width: width,
                                                        height: height, frameRate: frameRate, waitsForFrames: false)
        startedVideos = nil
        precondition(videos.frameRate == frameRate, "the videos started at \(videos.frameRate), finished at \(frameRate)")
        let (colorVideo, sideBySideVideo) = (videos.color, videos.sideBySide)
        guard let reader = FileHandle(forReadingAtPath: partial.path) else {
            throw MediaError.unreadable(path: partial.path, reason: "cannot read it back")
        }
        defer { try? reader.close() }
        let frameBytes = width * height * 4
        for t in 0..<frames {
            let bytes: Data?
            do {
                try reader.seek(toOffset: UInt64(headerBytes + t * frameBytes))
                bytes = try reader.read(upToCount: frameBytes)
            } catch {
                throw MediaError.unreadable(path: partial.path, reason: error.localizedDescription)
            }
            guard let bytes, bytes.count == frameBytes else {
                throw MediaError.unreadable(path: partial.path, reason: "frame \(t) is cut short")
            }
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let colored = ColorMap.colorize(values[...], width: width, height: height, scale: scale)
            if kinds.contains(.color) { try put(PNG.encodeRGB8(colored), "color/\(names[t]).png") }
            try colorVideo?.append(colored)
            if needsLeftForColor {
                guard let image = try left() else { preconditionFailure("a left view for every frame") }
                precondition(image.width == width && image.height == height, "the left view has the disparity's size")
                let both = ResultFrames.sideBySide(image, colored)
                if kinds.contains(.video) { try put(PNG.encodeRGB8(both), "video/\(names[t]).png") }
                try sideBySideVideo?.append(both)
            }
            progress(t + 1, frames)
        }
        // Both streams end before either is waited for, so the two encoders finish side by side.
        colorVideo?.endFrames()
        sideBySideVideo?.endFrames()
        if let colorVideo { try colorVideo.finish(); written.append("color.mp4") }
        if let sideBySideVideo { try sideBySideVideo.finish(); written.append("video.mp4") }
    }

    /// Writes the `kinds` of result for a whole `disparity` [T, H, W] held in memory (frames named `names`,
    /// left views `left`): both passes at once, for clips and tests. Returns the paths written.
    @discardableResult
    public static func write(disparity: Tensor, names: [String], left: [RGBImage], to directory: URL,
                             kinds: Set<ResultKind>, camera: StereoCamera?, frameRate: FrameRate) throws -> [String] {
        let (frames, height, width) = disparity.dims3
        precondition(names.count == frames && left.count == frames, "\(names.count) names, \(left.count) frames, disparity \(disparity.shape)")
        let writer = try ResultWriter(directory: directory, kinds: kinds, camera: camera, frames: frames, width: width, height: height)
        let pixels = width * height
        for t in 0..<frames {
            try writer.add(name: names[t], disparity: disparity.data[t * pixels..<(t + 1) * pixels], left: left[t])
        }
        var next = 0
        return try writer.finish(frameRate: frameRate, left: {
            defer { next += 1 }
            return left[next]
        })
    }
}
