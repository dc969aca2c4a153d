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
}
