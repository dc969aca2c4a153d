// The preparing step of a video job: the uploaded video decoded into the job's input frames, before its windows.
import Foundation
import JobQueue
import Media
import VideoIO

/// Copies the uploaded video(s) out of their chunks into a private folder, decodes them with the confined
/// ffmpeg (`VideoDecoder`: rlimits, a wall-clock limit scaled to frames × pixels, local files and the three
/// containers only), keeps the frames the job's selection names and stores each as a pair of PNGs, one frame
/// in memory at a time; then ends the step, which makes the windows claimable. The frames are named by their
/// index in the source (`0007`). A left and a right video are decoded one after the other: the left's kept
/// frames wait as PNG files in the folder until the right's arrive. A re-run stores only the frames not stored yet.
enum PreparingStep {
    /// `persist` runs a database step with the worker's reconnection policy. Returns false when the lease was lost.
    static func run(_ step: ClaimedWindow, queue: WorkerQueue, persist: (() throws -> Void) throws -> Void,
                    progress: (Int, Int) -> Void, isCancelled: @escaping () -> Bool) throws -> Bool {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dynstereo-prepare-\(UUID().uuidString.lowercased())")
        guard mkdir(folder.path, 0o700) == 0 else { throw BadJobInput("cannot create a folder for the upload in \(folder.path)") }
        defer { try? FileManager.default.removeItem(at: folder) }
        var uploads: [String: URL] = [:]
        var alreadyStored = 0
        try persist {
            uploads = try queue.copyUploads(of: step, into: folder)
            alreadyStored = try queue.storedInputCount(step)
        }
        let selection = step.parameters.selection
        let total = step.framesTotal
        var stored = alreadyStored
        var lost = false

        /// Stores job frame `position` (source frame `index`) unless an earlier run did.
        func store(position: Int, index: Int, left: () throws -> Data, right: () throws -> Data) throws {
            if isCancelled() { throw CancellationError() }
            guard position >= alreadyStored, !lost else { return }
            let frame: InputFrame
            do {
                frame = InputFrame(index: position, name: FrameSelection.frameName(index), left: try left(), right: try right())
            } catch let error as MediaError {
                throw BadJobInput("frame \(index): \(error)")
            }
            var kept = false
            try persist { kept = try queue.storeInput(step, frame) }
            if !kept { lost = true }
            stored = position + 1
            progress(stored, total)
        }

        do {
            switch step.source {
            case .frames:
                throw BadJobInput("a job of frames has no preparing step")
            case .sbs, .tb:
                guard let url = uploads["stereo"] else { throw BadJobInput("the stereo upload is missing") }
                let layout: StereoLayout = step.source == .sbs ? .sideBySide : .topBottom
                let info = try probe(url, part: "stereo")
                let indices = selection.indices(of: info.frameCount)
                let positions = Dictionary(uniqueKeysWithValues: indices.enumerated().map { ($1, $0) })
                try VideoDecoder.decode(info, frames: (indices.last ?? -1) + 1) { index, picture in
                    guard let position = positions[index] else { return }
                    let views = layout.split(picture)
                    try store(position: position, index: index, left: { try PNG.encodeRGB8(views.left) },
                              right: { try PNG.encodeRGB8(views.right) })
                    if lost { throw CancellationError() }
                }
            case .videos:
                guard let leftURL = uploads["left"], let rightURL = uploads["right"] else { throw BadJobInput("the left or right upload is missing") }
                let leftInfo = try probe(leftURL, part: "left"), rightInfo = try probe(rightURL, part: "right")
                guard leftInfo.frameCount == rightInfo.frameCount, leftInfo.width == rightInfo.width, leftInfo.height == rightInfo.height else {
                    throw BadJobInput("left and right no longer agree in frame count or size")
                }
                let indices = selection.indices(of: leftInfo.frameCount)
                let positions = Dictionary(uniqueKeysWithValues: indices.enumerated().map { ($1, $0) })
                let end = (indices.last ?? -1) + 1
                // The left's kept frames, as PNG files, wait for the right's.
                try VideoDecoder.decode(leftInfo, frames: end) { index, picture in
                    if isCancelled() { throw CancellationError() }
                    guard let position = positions[index], position >= alreadyStored else { return }
                    try PNG.encodeRGB8(picture).write(to: folder.appendingPathComponent("left-\(position).png"))
                }
                try VideoDecoder.decode(rightInfo, frames: end) { index, picture in
                    guard let position = positions[index] else { return }
                    let leftFile = folder.appendingPathComponent("left-\(position).png")
                    try store(position: position, index: index, left: { try Data(contentsOf: leftFile) },
                              right: { try PNG.encodeRGB8(picture) })
                    try? FileManager.default.removeItem(at: leftFile)
                    if lost { throw CancellationError() }
                }
            }
        } catch let error as VideoError {
            throw BadJobInput(Self.worded(error, folder: folder))
        } catch is CancellationError where lost {
            return false
        }
        if lost { return false }
        guard stored == total else {
            throw BadJobInput("the video gave \(stored) of the \(total) frames counted at upload")
        }
        var finished = false
        try persist { finished = try queue.finishPreparing(step) }
        return finished
    }

    private static func probe(_ url: URL, part: String) throws -> VideoInfo {
        try VideoProbe.probe(url.path)
    }

    /// A decoder's message with the folder's path replaced by the part's name.
    static func worded(_ error: VideoError, folder: URL) -> String {
        "\(error)".replacingOccurrences(of: folder.path + "/", with: "")
    }
}
