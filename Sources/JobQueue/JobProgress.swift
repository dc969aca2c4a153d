// How far a job has come, from its windows: what the API's `progress` and `frames_ready` report.
import Foundation

/// A job's progress, derived from its windows (cheap: the windows are a few rows per window, never frame data).
public struct JobProgress: Equatable, Sendable {
    /// Windows whose results are stored, of all windows (the finishing step not counted).
    public let windowsDone: Int
    public let windowsTotal: Int
    /// Refinement iterations run, at every scale, summed over the job's windows: a stored window counts all
    /// of its iterations, a running one what its worker last reported.
    public let iterationsDone: Int
    public let iterationsTotal: Int
    /// Seconds until the job's windows should all be stored, at the job's own measured speed: the time since it
    /// started over the work done so far, times the work left. Work is refinement iterations weighed by what
    /// they cost (`RefinementSchedule.cost`: an iteration at 1/4 scale costs 16 at 1/16, a window of more frames
    /// more), a stored window counting whole and a running one by the iterations its worker reported. Nil until
    /// a window is stored (before that the time measured is mostly the first window's encoder and attention,
    /// which no iteration count shows), and once the job is finished.
    public let etaSeconds: Double?
    /// What `etaSeconds` is computed from, for another `now`: nil when it is nil whatever the time (a job
    /// finished, not started, or without a stored window), so that the rest of the progress never changes
    /// with the clock alone.
    public let estimate: Estimate?
    /// The input frames whose results are stored (downloadable), as sorted, non-adjacent ranges.
    public let framesReady: [Range<Int>]

    /// The network's iterations of one window, at every scale: `iters / 2` at 1/16 and at 1/8, `iters` at 1/4
    /// (`RefinementSchedule`, which `DynamicStereoNetwork.forward` runs).
    public static func iterationsPerWindow(iters: Int) -> Int {
        RefinementSchedule(iters: iters).iterations
    }

    /// The progress of a job run with `iters` from its windows (`JobStore.windows`), as of `now`.
    public init(iters: Int, status: JobStatus, startedAt: Date?, windows: [JobWindow], now: Date) {
        let perWindow = Self.iterationsPerWindow(iters: iters)
        let work = windows.filter { $0.kind == .window }
        let stored = work.filter { $0.status == .succeeded }
        windowsDone = stored.count
        windowsTotal = work.count
        iterationsTotal = work.count * perWindow
        iterationsDone = stored.count * perWindow
            + work.filter { $0.status == .running }.reduce(0) { $0 + min($1.iterationsDone, perWindow) }
        var ranges: [Range<Int>] = []
        for range in stored.map(\.resultFrames).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = ranges.last, last.upperBound == range.lowerBound {
                ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
            } else {
                ranges.append(range)
            }
        }
        framesReady = ranges
        let schedule = RefinementSchedule(iters: iters)
        func cost(_ window: JobWindow, iterations: Int) -> Double {
            Double(window.inputFrames.count) * schedule.cost(ofFirst: iterations)
        }
        let costTotal = work.reduce(0) { $0 + cost($1, iterations: perWindow) }
        let costDone = stored.reduce(0) { $0 + cost($1, iterations: perWindow) }
            + work.filter { $0.status == .running }.reduce(0) { $0 + cost($1, iterations: $1.iterationsDone) }
        if !status.isTerminal, let started = startedAt, windowsDone > 0, costDone > 0 {
            estimate = Estimate(startedAt: started, costDone: costDone, costLeft: costTotal - costDone)
        } else {
            estimate = nil
        }
        etaSeconds = estimate?.seconds(at: now)
    }

    /// The job's speed so far and the work left: `seconds(at:)` is the ETA at any time, the only part of a
    /// job's progress that moves while its rows stay as they are.
    public struct Estimate: Equatable, Sendable {
        public let startedAt: Date
        /// Work done and left, in `RefinementSchedule.cost` units times frames (`costDone` > 0).
        public let costDone: Double
        public let costLeft: Double

        /// The time since the start over the work done, times the work left (0 once none is left).
        public func seconds(at now: Date) -> Double {
            let elapsed = max(now.timeIntervalSince(startedAt), 0)
            return max(0, elapsed / costDone * costLeft)
        }
    }
}
