// Splitting loops across the machine's cores (ggml's ith/nth), outside OpenBLAS calls.
import Dispatch
import Foundation

/// Runs `body(chunk)` for `count` chunks of work on all cores.
///
/// Each call receives a contiguous range of `0..<count`; ranges never overlap.
public func parallelFor(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let threads = min(ProcessInfo.processInfo.activeProcessorCount, max(1, count / max(1, minimumPerThread)))
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
