// The finishing step of a job: what needs the whole video, done one frame at a time once every window is stored.
import Foundation
import JobQueue
import Media
import VideoIO

/// Colours every stored frame on the video's one scale (from the frames' stored min/max) and renders
/// `video/` beside the left frame, one frame in memory at a time, each stored as it is made; writes each
/// calibrated frame's point cloud; feeds the two MP4s (`video.mp4`, `color.mp4`) frame by frame to confined
/// encoders and stores them in chunks; then ends the step, which makes the job succeed. Only the kinds the
/// job's `outputs` name are made. A re-run (after a crash) renders only the frames not stored yet, unless
/// an MP4 is wanted: an encoder needs every frame, in order, in one pass.
enum FinishingStep {
    /// `persist` runs a database step with the worker's reconnection policy. Returns false when the lease was lost.
    static func run(_ step: ClaimedWindow, queue: WorkerQueue, persist: (() throws -> Void) throws -> Void,
                    progress: (Int, Int) -> Void, isCancelled: () -> Bool) throws -> Bool {
        let kinds = step.parameters.resultKinds
        let wantsMP4 = kinds.contains(.videoMP4) || kinds.contains(.colorMP4)
        var range: ClosedRange<Float>?
        var frames: [Int] = []
        try persist {
            range = try queue.disparityRange(of: step)
            frames = wantsMP4 ? Array(0..<step.framesTotal) : try queue.framesToRender(step)
        }
        let scale = FrameRendering.scale(lower: range?.lowerBound, upper: range?.upperBound)
        let camera = step.parameters.focalPx.flatMap { focal in
            step.parameters.baselineM.map {
                StereoCamera(focalPx: focal, baselineM: $0, cxPx: step.parameters.cxPx, cyPx: step.parameters.cyPx,
                             maxDepthM: step.parameters.maxDepthM)
            }
        }
        let videos = wantsMP4 ? try EncodedVideos(step, kinds: kinds) : nil
        defer { videos?.discard() }
        for (done, index) in frames.enumerated() {
            if isCancelled() { throw CancellationError() }
            var stored: StoredFrame?
            try persist { stored = try queue.storedFrame(step, frame: index) }
            guard let frame = stored else { throw BadJobInput("frame \(index) has no stored result") }
            let values = frame.disparity.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }[...]
            let needsLeft = kinds.contains(.video) || kinds.contains(.videoMP4) || kinds.contains(.points)
            let left = try needsLeft ? frame.leftPNG.map { data -> RGBImage in
                do { return try FrameImage.decodeRGB(data) } catch let error as MediaError {
                    throw BadJobInput("frame \(index) (left): \(error)")
                }
            } : nil
            if let left, left.width != frame.width || left.height != frame.height {
                throw BadJobInput("frame \(index): left image is \(left.width)x\(left.height), disparity is \(frame.width)x\(frame.height)")
            }
            let colored = ColorMap.colorize(values, width: frame.width, height: frame.height, scale: scale)
            let sideBySide = left.map { ResultFrames.sideBySide($0, colored) }
            let rendered: RenderedFrame
            do {
                rendered = RenderedFrame(colorPNG: kinds.contains(.color) ? try PNG.encodeRGB8(colored) : nil,
                                         videoPNG: kinds.contains(.video) ? try sideBySide.map { try PNG.encodeRGB8($0) } : nil)
            } catch let error as MediaError {
                throw BadJobInput("cannot render frame \(index): \(error)")
            }
            var kept = false
            try persist { kept = try queue.storeRendered(step, frame: index, rendered) }
            guard kept else { return false }
            if let camera, kinds.contains(.points), let left {
                let cloud = PointCloud.ply(disparity: values, left: left, camera: camera)
                let path = "points/\(try FrameRendering.resultName(frame.name)).ply"
                try persist { kept = try queue.storeFile(step, path: path, data: cloud) }
                guard kept else { return false }
            }
            try videos?.append(color: colored, sideBySide: sideBySide, frame: index)
            progress(done + 1, frames.count)
        }
        if let videos {
            for (path, url) in try videos.finish() {
                var kept = false
                try persist { kept = try queue.storeFile(step, path: path, from: url) }
                guard kept else { return false }
            }
        }
        var finished = false
        try persist { finished = try queue.finish(step) }
        return finished
    }
}

/// The MP4s of one finishing step, written to a private folder by confined encoders fed one frame at a time.
final class EncodedVideos {
    private let folder: URL
    private var color: MP4Encoder?
    private var sideBySide: MP4Encoder?
    private let frames: Int
    private let rate: FrameRate
    private let kinds: Set<ResultKind>

    init(_ step: ClaimedWindow, kinds: Set<ResultKind>) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("dynstereo-finish-\(UUID().uuidString.lowercased())")
        guard mkdir(folder.path, 0o700) == 0 else { throw BadJobInput("cannot create a folder for the MP4s in \(folder.path)") }
        guard let rate = FrameRate(step.videoRate) else { throw BadJobInput("the job's video rate '\(step.videoRate)' is not N/D") }
        self.rate = rate
        self.kinds = kinds
        // The encoders start with the first frame, which gives their size.
        frames = step.framesTotal
    }

    func append(color colored: RGBImage, sideBySide: RGBImage?, frame: Int) throws {
        do {
            if kinds.contains(.colorMP4) {
                if color == nil {
                    color = try MP4Encoder(url: folder.appendingPathComponent("color.mp4"), width: colored.width,
                                           height: colored.height, frameRate: rate, frames: frames)
                }
                try color?.append(colored)
            }
            if kinds.contains(.videoMP4) {
                guard let sideBySide else { throw BadJobInput("frame \(frame) has no left image for video.mp4") }
                if self.sideBySide == nil {
                    self.sideBySide = try MP4Encoder(url: folder.appendingPathComponent("video.mp4"), width: sideBySide.width,
                                                     height: sideBySide.height, frameRate: rate, frames: frames,
                                                     maxWidth: ResultWriter.maxVideoWidth)
                }
                try self.sideBySide?.append(sideBySide)
            }
        } catch let error as VideoError {
            throw BadJobInput("\(error)".replacingOccurrences(of: folder.path + "/", with: ""))
        }
    }

    /// Ends both encodings; returns each file's result path and where it lies.
    func finish() throws -> [(String, URL)] {
        var files: [(String, URL)] = []
        // Both streams end before either is waited for, so the two encoders finish side by side.
        color?.endFrames()
        sideBySide?.endFrames()
        do {
            if let color {
                try color.finish()
                files.append(("color.mp4", color.url))
            }
            if let sideBySide {
                try sideBySide.finish()
                files.append(("video.mp4", sideBySide.url))
            }
        } catch let error as VideoError {
            throw BadJobInput("\(error)".replacingOccurrences(of: folder.path + "/", with: ""))
        }
        return files
    }

    /// Stops any encoder still running and removes the folder.
    func discard() {
        color?.cancel()
        sideBySide?.cancel()
        try? FileManager.default.removeItem(at: folder)
    }
}
