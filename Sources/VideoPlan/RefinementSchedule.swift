// DynamicStereo models/core/dynamic_stereo.py, forward: the cascade of refinement iterations of one window, scale
// by scale, shared by the network (which runs them) and the queue (which reports and times them).

/// The refinement iterations the network runs on one window, in the order it runs them: `iters / 2` at 1/16 of
/// the input, `iters / 2` at 1/8, `iters` at 1/4.
///
/// An iteration's cost grows with its scale's pixel count (the correlation lookup, the update block's
/// convolutions and the upsampling all run per pixel), so one at 1/4 costs 16 at 1/16: progress counts
/// iterations, estimates of the time left weigh them by `cost`.
public struct RefinementSchedule: Equatable, Sendable {
    /// One scale's share: the input's size over the scale's (16, 8 or 4) and how many iterations run there.
    public struct Scale: Equatable, Sendable {
        public let stride: Int
        public let iterations: Int

        /// The relative cost of one iteration here: the scale's pixel count over the input's.
        public var costPerIteration: Double { 1 / Double(stride * stride) }
    }

    /// Coarse to fine, as the network runs them.
    public let scales: [Scale]

    public init(iters: Int) {
        scales = [Scale(stride: 16, iterations: iters / 2), Scale(stride: 8, iterations: iters / 2),
                  Scale(stride: 4, iterations: iters)]
    }

    /// Every refinement iteration of a window, at every scale.
    public var iterations: Int { scales.reduce(0) { $0 + $1.iterations } }

    /// The relative cost of a window's first `done` iterations (clamped to 0...iterations), in units of one
    /// iteration at the input's full size on one frame; `cost(ofFirst: iterations)` is the whole window's.
    public func cost(ofFirst done: Int) -> Double {
        var left = max(0, done), total = 0.0
        for scale in scales {
            let here = min(left, scale.iterations)
            total += Double(here) * scale.costPerIteration
            left -= here
        }
        return total
    }

    /// The whole window's refinement cost (`cost(ofFirst: iterations)`).
    public var cost: Double { cost(ofFirst: iterations) }
}
