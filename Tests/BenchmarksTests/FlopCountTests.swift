import Benchmarks
import DynamicStereo
import XCTest

/// The analytic FLOP count against what torch's FlopCounterMode reported for the reference network.
final class FlopCountTests: XCTestCase {
    func testMatchesTorchsCountOnTheBenchmarkSizes() {
        // torch.utils.flop_counter on the reference (the performance issue's figures): 1.10 TFLOP for 5 frames of
        // 128x256 at 10 iterations, 19.8 TFLOP for 5 frames of 480x640 at 20. Both are given to 3 digits.
        let small = FlopCount(frames: 5, height: 128, width: 256, iters: 10).total
        let large = FlopCount(frames: 5, height: 480, width: 640, iters: 20).total
        XCTAssertEqual(small / 1e12, 1.10, accuracy: 0.005)
        XCTAssertEqual(large / 1e12, 19.8, accuracy: 0.05)
    }

    func testStagesAddUpAndUpdateBlocksDominate() {
        let count = FlopCount(frames: 5, height: 256, width: 320, iters: 20)
        XCTAssertEqual(NetworkStage.allCases.map { count[$0] }.reduce(0, +), count.total, accuracy: 1)
        // The reference's profile: the 1/4 update block is most of the work; lookups and upsampling count nothing.
        XCTAssertGreaterThan(count[.update04] / count.total, 0.7)
        XCTAssertEqual(count[.correlationLookup], 0)
        XCTAssertEqual(count[.upsampling], 0)
    }
}
