// Splitting loops across the machine's cores (ggml's ith/nth), outside OpenBLAS calls.
import Dispatch
import Foundation

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
