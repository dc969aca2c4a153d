// DynamicStereo models/core/dynamic_stereo.py, forward_batch_test: how a video is cut into windows, shared by the network
// (which runs them) and the queue (which hands them out).

/// One window of a video: which frames it runs on and which of its results it contributes.
public struct InferenceWindow: Equatable, Sendable {
    /// The window's first frame and its frame count.
    public let start: Int, length: Int
    /// The positions within the window whose disparity goes to the output, in order.
    public let keep: Range<Int>

    /// The windows of a video of `frames` frames, exactly as the reference's `forward_batch_test` cuts them
    /// (stride kernelSize / 2, Python's floor division), except that a video no longer than one window runs
    /// as one window and keeps every frame (the reference would drop frames there).
    public static func plan(frames: Int, kernelSize: Int) -> [InferenceWindow] {
        precondition(kernelSize >= 2, "kernel size must be at least 2")
        guard frames > kernelSize else {
            return frames == 0 ? [] : [InferenceWindow(start: 0, length: frames, keep: 0..<frames)]
        }
        let stride = kernelSize / 2
        // Python's `-stride // 2` rounds toward negative infinity: it drops ceil(stride / 2) trailing frames.
        let dropTail = (stride + 1) / 2
        var windows: [InferenceWindow] = []
        for start in Swift.stride(from: 0, to: frames, by: stride) {
            let length = min(start + kernelSize, frames) - start
            if windows.isEmpty {
                windows.append(InferenceWindow(start: start, length: length, keep: 0..<max(0, length - dropTail)))
            } else if length >= stride {
                let end = length < kernelSize ? length : length - dropTail
                windows.append(InferenceWindow(start: start, length: length, keep: min(stride / 2, end)..<end))
            }
        }
        return windows
    }

    /// For each output frame, the input frame it is the disparity of.
    public static func outputFrames(frames: Int, kernelSize: Int) -> [Int] {
        plan(frames: frames, kernelSize: kernelSize).flatMap { window in window.keep.map { window.start + $0 } }
    }
}
