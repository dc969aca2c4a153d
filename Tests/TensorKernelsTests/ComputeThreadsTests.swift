import XCTest
import TensorKernels

/// `parallelFor` splits its work over `ComputeThreads.count` cores, whatever the machine has.
final class ComputeThreadsTests: XCTestCase {
    private func ranges(_ count: Int, minimumPerThread: Int = 1) -> [Range<Int>] {
        let lock = NSLock()
        var seen: [Range<Int>] = []
        parallelFor(count, minimumPerThread: minimumPerThread) { range in lock.withLock { seen.append(range) } }
        return seen.sorted { $0.lowerBound < $1.lowerBound }
    }

    func testParallelForObeysTheSetting() {
        let original = ComputeThreads.count
        defer { ComputeThreads.count = original }
        ComputeThreads.count = 3
        XCTAssertEqual(ranges(10), [0..<4, 4..<8, 8..<10])
        // Fewer items per thread than the minimum use fewer threads.
        XCTAssertEqual(ranges(10, minimumPerThread: 5), [0..<5, 5..<10])
        ComputeThreads.count = 1
        XCTAssertEqual(ranges(10), [0..<10])
    }

    /// The parallel fills write every element once, whatever the split: sizes below, at and above the
    /// per-thread minimum (2^18), odd ones, and on three threads.
    func testParallelZerosAndCopyCoverEveryElement() {
        let original = ComputeThreads.count
        defer { ComputeThreads.count = original }
        for threads in [1, 2, 3] {
            ComputeThreads.count = threads
            for count in [0, 1, 7, (1 << 18) - 1, 1 << 18, 3 * (1 << 18) + 5] {
                let zeros = parallelZeros(count)
                XCTAssertEqual(zeros.count, count)
                XCTAssertNil(zeros.firstIndex { $0 != 0 }, "parallelZeros(\(count)) on \(threads) threads")
                let source = (0..<count).map { Float($0 % 1009) - 500.5 }
                XCTAssertEqual(parallelCopy(source), source, "parallelCopy of \(count) on \(threads) threads")
            }
        }
    }

    /// `parallelClaims` hands every block out exactly once, on one core and on several, with fewer blocks than
    /// cores too, and a core that claims nothing still runs its setup once.
    func testParallelClaimsHandsOutEveryBlockOnce() {
        let original = ComputeThreads.count
        defer { ComputeThreads.count = original }
        for threads in [1, 2, 3] {
            ComputeThreads.count = threads
            for count in [0, 1, 2, 5, 64] {
                let lock = NSLock()
                var claimed: [Int] = [], setups = 0
                parallelClaims(count) { claim in
                    lock.withLock { setups += 1 }
                    while let block = claim() {
                        lock.withLock { claimed.append(block) }
                    }
                }
                XCTAssertEqual(claimed.sorted(), Array(0..<count), "\(count) blocks on \(threads) threads")
                XCTAssertEqual(setups, count == 0 ? 0 : min(threads, count), "\(count) blocks on \(threads) threads")
            }
        }
    }
}
