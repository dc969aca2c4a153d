// The parts of one forward pass that a clock, when the caller hands one to `forward`, times separately
// (what `dynstereo bench` breaks its figures down by).
import Dispatch
import Foundation

/// A stage of `DynamicStereoNetwork.forward`, in the order the reference's profile names them.
public enum NetworkStage: Int, CaseIterable, Sendable {
    /// The feature encoder `fnet` on the left and right frames.
    case encoder
    /// Position encoding, time embedding and the 4 rounds of self, cross and temporal attention at 1/16.
    case attention
    /// The all-pairs correlation volumes and their pyramids, once per scale.
    case correlationBuild
    /// The correlation taps around the current flow, once per iteration.
    case correlationLookup
    /// `update_block16` and the work it needs once per scale (its iterations at 1/16).
    case update16
    /// `update_block08`.
    case update08
    /// `update_block04`.
    case update04
    /// Convex upsampling of every iteration's flow and the bilinear resizes between scales.
    case upsampling
    /// Everything else: input scaling, pooling, splitting and the state hand-over between scales.
    case other

    public var name: String {
        switch self {
        case .encoder: return "encoder (fnet, L+R)"
        case .attention: return "attention stack (1/16)"
        case .correlationBuild: return "correlation build"
        case .correlationLookup: return "correlation lookup"
        case .update16: return "update block 1/16"
        case .update08: return "update block 1/8"
        case .update04: return "update block 1/4"
        case .upsampling: return "upsampling"
        case .other: return "other"
        }
    }
}

/// The parts of an update block, timed across all three blocks for the breakdown of the update stages.
public enum UpdatePart: Int, CaseIterable, Sendable {
    case motionEncoder, updateAttention, gru, flowHead, maskHead

    public var name: String {
        switch self {
        case .motionEncoder: return "motion encoder"
        case .updateAttention: return "attention (1/16 only)"
        case .gru: return "GRU (3 passes)"
        case .flowHead: return "flow head"
        case .maskHead: return "mask head"
        }
    }
}

/// Wall-clock seconds per stage, accumulated over the forward passes it is handed to.
///
/// The network asks it to time each stage when one is given; without one it costs nothing. Not thread-safe:
/// one clock per forward pass in flight.
public final class StageClock {
    public private(set) var seconds = [Double](repeating: 0, count: NetworkStage.allCases.count)
    /// Seconds per part of the update blocks (inside the update stages' time).
    public private(set) var updateSeconds = [Double](repeating: 0, count: UpdatePart.allCases.count)

    public init() {}

    /// With `DYNSTEREO_TRACE_RSS` set, each stage or part that raises the process's peak resident set prints
    /// the new peak to standard error: where a window's memory peak comes from.
    static let tracesMemory = ProcessInfo.processInfo.environment["DYNSTEREO_TRACE_RSS"] != nil
    private var tracedPeak = 0

    private func traceMemory(_ name: String) {
        guard Self.tracesMemory else { return }
        let peak = Self.peakResidentBytes()
        guard peak > tracedPeak + (8 << 20) else { return }
        tracedPeak = peak
        FileHandle.standardError.write(Data(String(format: "peak RSS %6.0f MiB after %@\n",
                                                   Double(peak) / 1_048_576, name).utf8))
    }

    /// Runs `body` and adds its wall time to `stage`.
    public func measure<Result>(_ stage: NetworkStage, _ body: () throws -> Result) rethrows -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            seconds[stage.rawValue] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            traceMemory(stage.name)
        }
        return try body()
    }

    /// CPU seconds of the whole process (all threads) per part of the update blocks: on a busy machine a
    /// steadier measure of the work than wall time (spinning BLAS threads count too).
    public private(set) var updateCPUSeconds = [Double](repeating: 0, count: UpdatePart.allCases.count)

    /// Runs `body` and adds its wall and CPU time to the update blocks' `part`.
    public func measure<Result>(_ part: UpdatePart, _ body: () throws -> Result) rethrows -> Result {
        let start = DispatchTime.now().uptimeNanoseconds, cpu = Self.processCPUSeconds()
        defer {
            updateSeconds[part.rawValue] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            updateCPUSeconds[part.rawValue] += Self.processCPUSeconds() - cpu
            traceMemory(part.name)
        }
        return try body()
    }

    /// CPU time used by the process so far.
    public static func processCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    public subscript(stage: NetworkStage) -> Double { seconds[stage.rawValue] }

    /// The process's peak resident set (VmHWM of /proc/self/status), or 0 where there is none.
    public static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kib = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kib * 1024
        }
        return 0
    }
}

extension Optional where Wrapped == StageClock {
    /// Times `body` when there is a clock, runs it plainly otherwise.
    @inline(__always)
    func measure<Result>(_ stage: NetworkStage, _ body: () throws -> Result) rethrows -> Result {
        switch self {
        case .some(let clock): return try clock.measure(stage, body)
        case .none: return try body()
        }
    }

    @inline(__always)
    func measure<Result>(_ part: UpdatePart, _ body: () throws -> Result) rethrows -> Result {
        switch self {
        case .some(let clock): return try clock.measure(part, body)
        case .none: return try body()
        }
    }
}
