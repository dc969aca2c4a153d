// What a worker does with a claimed window, behind a protocol so the queue mechanics test without the network.
import Foundation
import JobQueue
import Media

/// Turns one window's input frames into the results of the frames it gives. Called on a worker thread; may
/// take minutes.
///
/// - `frames` are the window's input frames (`window.window.inputFrames`), in order; the result is one
///   `FrameResult` per frame of `window.window.resultFrames`, in order.
/// - `progress(iterationsDone, iterationsTotal)` is reported to the database by the heartbeat.
/// - `isCancelled()` turns true when the job was cancelled, the window's lease was lost, or the worker is
///   shutting down; the processor should then throw `CancellationError` soon (between network iterations).
/// - Throw a `PermanentJobError` for input that can never work (the job fails at once, without retries);
///   any other error spends one of the window's attempts and the window is retried with backoff.
public protocol JobProcessor: AnyObject {
    func process(window: ClaimedWindow, frames: [InputFrame],
                 progress: @escaping (_ iterationsDone: Int, _ iterationsTotal: Int) -> Void,
                 isCancelled: @escaping () -> Bool) throws -> [FrameResult]
}

/// An error a retry cannot fix (an undecodable frame, mismatched stereo sizes, a video the network
/// rejects). `code` is stored with the job for clients to branch on.
public protocol PermanentJobError: Error, CustomStringConvertible {
    var code: String { get }
}

/// A job's input is unusable.
public struct BadJobInput: PermanentJobError {
    public let message: String
    public var code: String { "bad_input" }
    public var description: String { message }

    public init(_ message: String) {
        self.message = message
    }
}

/// The per-frame rows of a window from its disparity, [frames the window gives] × H × W row-major: the
/// files `ResultFiles` would make for those frames, minus what needs the whole video (colour, `video/`).
public enum WindowResults {
    public static func make(_ window: ClaimedWindow, names: [String], disparity: [Float], height: Int, width: Int) throws -> [FrameResult] {
        let frames = window.window.resultFrames
        precondition(names.count == frames.count && disparity.count == frames.count * height * width, "one name and one frame per result")
        let plane = height * width
        // Only the kinds the job's `outputs` name are encoded; the float32 disparity is always kept (the
        // finishing step colours from it, and disparity.npy streams from it).
        let kinds = window.parameters.resultKinds
        do {
            return try frames.enumerated().map { offset, frame in
                let values = disparity[offset * plane..<(offset + 1) * plane]
                let range = FrameRendering.range(values)
                return FrameResult(frameIndex: frame, name: try FrameRendering.resultName(names[offset]), height: height, width: width,
                                   // The machines Swift runs on here are little-endian, as .npy's '<f4' wants.
                                   disparity: values.withUnsafeBytes { Data($0) },
                                   disparityPNG: kinds.contains(.disparity) ? try FrameRendering.disparityPNG(values, width: width, height: height) : nil,
                                   depthPNG: kinds.contains(.depth)
                                       ? try FrameRendering.depthPNG(values, width: width, height: height,
                                                                     focalPx: window.parameters.focalPx, baselineM: window.parameters.baselineM)
                                       : nil,
                                   minDisparity: range.min, maxDisparity: range.max)
            }
        } catch let error as MediaError {
            throw BadJobInput("cannot render the results: \(error)")
        }
    }
}
