// Which input frames each window of a video answers for: the unit of work of the queue and of `infer`.

/// A window of `InferenceWindow.plan` with the input frames whose result it gives.
///
/// The reference's windows overlap, and with an odd kernel size two windows keep a result for the same input
/// frame (kernel 5 on 12 frames keeps 17 results). Results are keyed by input frame, one each: the first
/// window that keeps a frame gives its result, and later windows keep only the frames after it. A window
/// left with no frame of its own is not run at all.
public struct WindowAssignment: Equatable, Sendable {
    /// Position in the video's list of assignments, from 0.
    public let index: Int
    /// The frames the network runs on.
    public let window: InferenceWindow
    /// The input frames whose results this window stores (a non-empty part of its kept frames).
    public let frames: Range<Int>

    /// The input frames the network reads: `window.start ..< window.start + window.length`.
    public var inputFrames: Range<Int> { window.start..<(window.start + window.length) }

    /// `frames` as positions within the window's output.
    public var keptPositions: Range<Int> { (frames.lowerBound - window.start)..<(frames.upperBound - window.start) }

    public init(index: Int, window: InferenceWindow, frames: Range<Int>) {
        precondition(!frames.isEmpty && frames.lowerBound >= window.start + window.keep.lowerBound
                     && frames.upperBound <= window.start + window.keep.upperBound, "a window gives only frames it keeps")
        self.index = index
        self.window = window
        self.frames = frames
    }

    /// The assignments of a video of `frames` frames: together their `frames` are 0..<frames, each once, in order.
    public static func plan(frames: Int, kernelSize: Int) -> [WindowAssignment] {
        var assignments: [WindowAssignment] = []
        var next = 0  // the first input frame no earlier window gives
        for window in InferenceWindow.plan(frames: frames, kernelSize: kernelSize) {
            let lower = max(window.start + window.keep.lowerBound, next)
            let upper = window.start + window.keep.upperBound
            guard lower < upper else { continue }
            assignments.append(WindowAssignment(index: assignments.count, window: window, frames: lower..<upper))
            next = upper
        }
        return assignments
    }
}
