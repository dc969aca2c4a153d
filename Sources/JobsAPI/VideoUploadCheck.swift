// Checks an uploaded video submission before a job exists: ffprobe (confined) reads each container and counts
// its packets, decoding nothing, so the upload is answered in the time it takes to read the file once. The
// frames are decoded later, by the job's preparing step on a worker.
import Foundation
import HTTPTransport
import JobQueue
import VideoIO

/// What a checked video submission gives the queue: the frames its selection keeps and the MP4s' rate.
struct CheckedVideos {
    let source: JobSource
    /// The uploaded parts to store, by form name.
    let parts: [(part: String, file: URL)]
    /// Frames the selection keeps.
    let frameCount: Int
    /// `N/D`: the source's rate divided by `frame_step` (30 when the container states none).
    let videoRate: String
}

enum VideoUploadCheck {
    /// Whether an uploaded part is a tar of frames rather than a video: the client named it `.tar`, `.tar.gz`
    /// or `.tgz`, or it starts like a gzip stream or carries the ustar magic (`StereoClip.isFrameCollection`).
    static func isFrameArchive(_ url: URL, filename: String?) throws -> Bool {
        if let name = filename?.lowercased(), name.hasSuffix(".tar") || name.hasSuffix(".tar.gz") || name.hasSuffix(".tgz") {
            return true
        }
        do { return try StereoClip.isFrameCollection(url) } catch {
            throw APIError(.internalError, "upload_storage", "the upload could not be read back: \(error)")
        }
    }

    /// Probes a left and a right video: each must open, hold a video stream with frames, and both must agree in
    /// frame count, frame size and frame rate; the selection must keep at least one frame and no more than
    /// the limit.
    static func sides(left: URL, right: URL, parameters: JobParameters, limits: FrameLimits) throws -> CheckedVideos {
        guard parameters.fps == nil else { throw fpsWithVideo }
        let leftInfo = try probe(left, part: "left", limits: limits)
        let rightInfo = try probe(right, part: "right", limits: limits)
        guard leftInfo.frameCount == rightInfo.frameCount else {
            throw APIError.unprocessable("frame_count_mismatch",
                                         "left has \(leftInfo.frameCount) frames but right has \(rightInfo.frameCount) (counted from their containers)")
        }
        guard leftInfo.width == rightInfo.width, leftInfo.height == rightInfo.height else {
            throw APIError.unprocessable("frame_size_mismatch",
                                         "left frames are \(leftInfo.width)x\(leftInfo.height), right frames are \(rightInfo.width)x\(rightInfo.height)")
        }
        if let l = leftInfo.frameRate, let r = rightInfo.frameRate, l != r {
            throw APIError.unprocessable("frame_rate_mismatch", "left runs at \(l) frames per second, right at \(r)")
        }
        let count = try selected(parameters.selection, total: leftInfo.frameCount, limits: limits)
        return CheckedVideos(source: .videos, parts: [("left", left), ("right", right)], frameCount: count,
                             videoRate: rate(leftInfo.frameRate ?? rightInfo.frameRate, step: parameters.selection.step))
    }

    /// Probes one video holding both views: `layout` `sbs` needs an even width, `tb` an even height.
    static func packed(_ url: URL, layout name: String, parameters: JobParameters, limits: FrameLimits) throws -> CheckedVideos {
        guard let layout = StereoLayout(rawValue: name) else {
            throw APIError.unprocessable("invalid_parameters", "layout must be sbs or tb, got '\(name)'")
        }
        guard parameters.fps == nil else { throw fpsWithVideo }
        let info = try probe(url, part: "stereo", limits: limits)
        do {
            _ = try layout.viewSize(width: info.width, height: info.height, source: "stereo")
        } catch {
            throw APIError.unprocessable("invalid_layout", "\(error)")
        }
        let count = try selected(parameters.selection, total: info.frameCount, limits: limits)
        return CheckedVideos(source: layout == .sideBySide ? .sbs : .tb, parts: [("stereo", url)], frameCount: count,
                             videoRate: rate(info.frameRate, step: parameters.selection.step))
    }

    private static let fpsWithVideo = APIError.unprocessable(
        "invalid_parameters", "fps is for frame tars; the MP4s of a video run at its own rate divided by frame_step")

    private static func rate(_ source: FrameRate?, step: Int) -> String {
        (source ?? FrameRate(numerator: 30, denominator: 1)!).divided(by: step).description
    }

    private static func selected(_ selection: FrameSelection, total: Int, limits: FrameLimits) throws -> Int {
        let count = selection.indices(of: total).count
        guard count > 0 else {
            throw APIError.unprocessable("no_frames_selected", "start_frame \(selection.start) is past the last frame (the video has \(total))")
        }
        guard count <= limits.maxFrames else {
            throw APIError(.payloadTooLarge, "too_many_frames",
                           "the selection keeps \(count) frames, more than this server's limit of \(limits.maxFrames) per job; use frame_count, frame_step or start_frame")
        }
        return count
    }

    /// ffprobe on one part, its errors worded with the part's form name (never the server's temp path).
    static func probe(_ url: URL, part: String, limits: FrameLimits) throws -> VideoInfo {
        do {
            return try VideoProbe.probe(url.path, maxPixels: limits.maxPixelsPerFrame)
        } catch let error as VideoError {
            let message = "\(error)".replacingOccurrences(of: url.path, with: part)
            switch error {
            case .noVideoStream: throw APIError.unprocessable("no_video_stream", message)
            case .noFrames: throw APIError.unprocessable("no_frames", message)
            case .tooLarge: throw APIError(.payloadTooLarge, "frame_too_large", message)
            default: throw APIError.unprocessable("invalid_video", message)
            }
        } catch let error as ConfinedProcessError {
            throw APIError(.internalError, "video_tools", "\(error)")
        }
    }
}
