// The chosen result kinds of a run, written into a folder frame by frame: PNGs, PLY clouds and the two MP4s.
import Foundation
import Media
import TensorKernels
import VideoPlan

/// Writes a disparity video's results, only the kinds asked for, streaming: per frame it builds the colour
/// map once (when any kind needs it), writes that frame's files and feeds the MP4 encoders, so memory holds
/// one frame's pictures however long the video.
public enum ResultWriter {
    /// `video.mp4` is at most this wide: browsers refuse wider H.264.
    public static let maxVideoWidth = 4096

    /// Writes the `kinds` of result for `disparity` [T, H, W] (frames named `names`, left views `left`) into
    /// `directory`; returns the paths written, relative to it. `camera` is required for depth and points.
    @discardableResult
    public static func write(disparity: Tensor, names: [String], left: [RGBImage], to directory: URL,
                             kinds: Set<ResultKind>, camera: StereoCamera?, frameRate: FrameRate) throws -> [String] {
        let (frames, height, width) = disparity.dims3
        precondition(names.count == frames && left.count == frames, "\(names.count) names, \(left.count) frames, disparity \(disparity.shape)")
        precondition(camera != nil || !kinds.contains(where: \.needsCalibration), "depth and points need a camera")
        let stems = try names.map(ResultFrames.stem)
        var written: [String] = []
        func put(_ data: Data, _ path: String) throws {
            let url = directory.appendingPathComponent(path)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: url, options: .atomic)
            } catch {
                throw MediaError.unreadable(path: url.path, reason: "cannot write: \(error.localizedDescription)")
            }
            written.append(path)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw MediaError.unreadable(path: directory.path, reason: "cannot create it: \(error.localizedDescription)")
        }
        if kinds.contains(.npy) { try put(NPY.encode(disparity), ResultFiles.disparityArrayPath) }

        let needsColor = !kinds.isDisjoint(with: [.color, .video, .colorMP4, .videoMP4])
        let scale = needsColor ? ColorMap.robustScale(disparity.data) : nil
        let colorVideo = kinds.contains(.colorMP4)
            ? try MP4Encoder(url: directory.appendingPathComponent("color.mp4"), width: width, height: height,
                             frameRate: frameRate, frames: frames) : nil
        let sideBySideVideo = kinds.contains(.videoMP4)
            ? try MP4Encoder(url: directory.appendingPathComponent("video.mp4"), width: 2 * width, height: height,
                             frameRate: frameRate, frames: frames, maxWidth: maxVideoWidth) : nil

        let pixels = width * height
        for t in 0..<frames {
            let frame = disparity.data[t * pixels..<(t + 1) * pixels]
            let stem = stems[t]
            if kinds.contains(.disparity) {
                try put(ResultFrames.disparityPNG(frame, width: width, height: height), "disparity/\(stem).png")
            }
            if let camera, kinds.contains(.depth) {
                try put(ResultFrames.depthPNG(frame, width: width, height: height,
                                              focalPx: camera.focalPx, baselineM: camera.baselineM), "depth/\(stem).png")
            }
            if let camera, kinds.contains(.points) {
                try put(PointCloud.ply(disparity: frame, left: left[t], camera: camera), "points/\(stem).ply")
            }
            guard let scale else { continue }
            let colored = ColorMap.colorize(frame, width: width, height: height, scale: scale)
            if kinds.contains(.color) { try put(PNG.encodeRGB8(colored), "color/\(stem).png") }
            try colorVideo?.append(colored)
            if kinds.contains(.video) || sideBySideVideo != nil {
                let both = ResultFrames.sideBySide(left[t], colored)
                if kinds.contains(.video) { try put(PNG.encodeRGB8(both), "video/\(stem).png") }
                try sideBySideVideo?.append(both)
            }
        }
        if let colorVideo { try colorVideo.finish(); written.append("color.mp4") }
        if let sideBySideVideo { try sideBySideVideo.finish(); written.append("video.mp4") }
        return written
    }
}
