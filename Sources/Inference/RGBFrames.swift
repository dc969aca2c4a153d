// Wiring the network to decoded images: RGB frames into the network's input tensors, whole videos of them
// through the estimator.
import DynamicStereo
import Media
import TensorKernels

extension Tensor {
    /// Frames as the network takes them: [T, 3, H, W] float32 with values 0...255, from interleaved 8-bit RGB.
    /// Every frame must have the first one's size.
    public init(rgbFrames images: [RGBImage]) {
        precondition(!images.isEmpty, "Tensor(rgbFrames:): no frames")
        let (h, w) = (images[0].height, images[0].width)
        precondition(images.allSatisfy { $0.width == w && $0.height == h }, "Tensor(rgbFrames:): frames differ in size")
        let plane = h * w
        self.init(shape: [images.count, 3, h, w], unsafeUninitialized: { out in
            for (t, image) in images.enumerated() {
                image.pixels.withUnsafeBufferPointer { px in
                    for c in 0..<3 {
                        let base = (t * 3 + c) * plane
                        // p * 3 + c < 3 · plane = px.count: the image is h x w by the precondition.
                        for p in 0..<plane { out[base + p] = Float(px[p * 3 + c]) }
                    }
                }
            }
        })
    }
}

extension StereoVideoEstimator {
    /// The final disparity of a decoded stereo video, [T', H, W]: `estimate(frames:height:width:...)` with each
    /// window's frames converted as it is needed. Bad input (no frames, unequal counts or sizes, out-of-range
    /// parameters) is an `InferenceError` naming the problem.
    public func estimate(left: [RGBImage], right: [RGBImage], iters: Int = 20, kernelSize: Int = 20,
                         progress: (InferenceProgress) -> Void = { _ in },
                         isCancelled: () -> Bool = { false }) throws -> Tensor {
        try Self.validate(iters: iters, kernelSize: kernelSize)
        guard !left.isEmpty || !right.isEmpty else { throw InferenceError.noFrames }
        guard left.count == right.count else { throw InferenceError.frameCountMismatch(left: left.count, right: right.count) }
        let (height, width) = (left[0].height, left[0].width)
        for i in 0..<left.count {
            let (l, r) = (left[i], right[i])
            if l.width != r.width || l.height != r.height || l.width != width || l.height != height {
                throw InferenceError.frameSizeMismatch(frame: i, left: "\(l.width)x\(l.height)", right: "\(r.width)x\(r.height)")
            }
        }
        return try estimate(frames: left.count, height: height, width: width, iters: iters, kernelSize: kernelSize,
                            window: { range in (Tensor(rgbFrames: Array(left[range])), Tensor(rgbFrames: Array(right[range]))) },
                            progress: progress, isCancelled: isCancelled)
    }
}
