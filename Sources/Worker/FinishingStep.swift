// The finishing step of a job: what needs the whole video, done one frame at a time once every window is stored.
import Foundation
import JobQueue
import Media

/// Colours every stored frame on the video's one scale (from the frames' stored min/max) and renders
/// `video/` beside the left frame, one frame in memory at a time, each stored as it is made; then ends the
/// step, which makes the job succeed. A re-run (after a crash) renders only the frames not stored yet.
enum FinishingStep {
    /// `persist` runs a database step with the worker's reconnection policy. Returns false when the lease was lost.
    static func run(_ step: ClaimedWindow, queue: WorkerQueue, persist: (() throws -> Void) throws -> Void,
                    progress: (Int, Int) -> Void, isCancelled: () -> Bool) throws -> Bool {
        var range: ClosedRange<Float>?
        var frames: [Int] = []
        try persist {
            range = try queue.disparityRange(of: step)
            frames = try queue.framesToRender(step)
        }
        let scale = FrameRendering.scale(lower: range?.lowerBound, upper: range?.upperBound)
        for (done, index) in frames.enumerated() {
            if isCancelled() { throw CancellationError() }
            var stored: StoredFrame?
            try persist { stored = try queue.storedFrame(step, frame: index) }
            guard let frame = stored else { throw BadJobInput("frame \(index) has no stored result") }
            let left = try frame.leftPNG.map { data -> RGBImage in
                do { return try PNG.decodeRGB(data) } catch let error as MediaError {
                    throw BadJobInput("frame \(index) (left): \(error)")
                }
            }
            let values = frame.disparity.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let rendered: (color: Data, video: Data?)
            do {
                rendered = try FrameRendering.colorAndVideo(values[...], width: frame.width, height: frame.height, scale: scale, left: left)
            } catch let error as MediaError {
                throw BadJobInput("cannot render frame \(index): \(error)")
            }
            var kept = false
            try persist { kept = try queue.storeRendered(step, frame: index, RenderedFrame(colorPNG: rendered.color, videoPNG: rendered.video)) }
            guard kept else { return false }
            progress(done + 1, frames.count)
        }
        var finished = false
        try persist { finished = try queue.finish(step) }
        return finished
    }
}
