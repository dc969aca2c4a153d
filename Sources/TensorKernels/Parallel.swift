// Splitting loops across the machine's cores (ggml's ith/nth), outside OpenBLAS calls.
import Dispatch
import Foundation
import Synchronization

/// How many cores the network's work is split over: the one setting that `parallelFor` and the splits of
/// `BLAS.sgemm` both obey (OpenBLAS itself stays on one thread, see `BLAS`).
///
/// All active processors unless set otherwise, for example by a worker that leaves cores to other processes.
/// Set it once, before the work starts; every split reads it when it begins.
public enum ComputeThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var stored = ProcessInfo.processInfo.activeProcessorCount

    /// At least 1.
    public static var count: Int {
        get { lock.withLock { stored } }
        set {
            precondition(newValue >= 1, "ComputeThreads: \(newValue) threads")
            lock.withLock { stored = newValue }
        }
    }
}

/// Runs `body(chunk)` for `count` chunks of work on `ComputeThreads.count` cores.
///
/// Each call receives a contiguous range of `0..<count`; ranges never overlap.
public func parallelFor(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let threads = min(ComputeThreads.count, max(1, count / max(1, minimumPerThread)))
    if threads <= 1 {
        body(0..<count)
        return
    }
    let per = (count + threads - 1) / threads
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        let start = t * per
        let end = min(count, start + per)
        if start < end { body(start..<end) }
    }
}

/// Runs `body` once on each of up to `ComputeThreads.count` cores; each takes the blocks `0..<count` one at a
/// time through `claim` (nil once none is left), so a core that finishes a cheap block goes on with the next one.
///
/// For few blocks of unequal cost (a frame at a video's edge reads fewer time taps than one inside it), where
/// `parallelFor`'s fixed ranges leave one core waiting for the other. A core's setup (its scratch) goes
/// before its first claim. Every block is claimed exactly once; which core runs it is not fixed.
public func parallelClaims(_ count: Int, _ body: (_ claim: () -> Int?) -> Void) {
    guard count > 0 else { return }
    let threads = min(ComputeThreads.count, count)
    if threads <= 1 {
        var next = 0
        body {
            defer { next += 1 }
            return next < count ? next : nil
        }
        return
    }
    let next = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: threads) { _ in
        body {
            let block = next.add(1, ordering: .relaxed).oldValue
            return block < count ? block : nil
        }
    }
}

/// `count` zeros, written by all cores: a single core's memset of the GRU's 100 MB pass buffers (5 frames of
/// 480x640) left the other core idle for tens of milliseconds per pass.
public func parallelZeros(_ count: Int) -> [Float] {
    guard count > 0 else { return [] }
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        let base = buffer.baseAddress!
        parallelFor(count, minimumPerThread: 1 << 18) { range in
            (base + range.lowerBound).initialize(repeating: 0, count: range.count)
        }
        initialized = count
    }
}

/// A copy of `source` written by all cores (the copy-on-write copy of an array is one core's memmove).
public func parallelCopy(_ source: [Float]) -> [Float] {
    guard !source.isEmpty else { return [] }
    return source.withUnsafeBufferPointer { from in
        [Float](unsafeUninitializedCapacity: from.count) { buffer, initialized in
            let (base, origin) = (buffer.baseAddress!, from.baseAddress!)
            parallelFor(from.count, minimumPerThread: 1 << 18) { range in
                (base + range.lowerBound).initialize(from: origin + range.lowerBound, count: range.count)
            }
            initialized = from.count
        }
    }
}
