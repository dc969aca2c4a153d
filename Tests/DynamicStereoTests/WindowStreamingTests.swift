// The estimator's windows handed on as they finish, one result per input frame, and the network's per-iteration hook.
import XCTest
@testable import DynamicStereo
import Inference
import Media
import TensorKernels
import TestSupport

final class WindowStreamingTests: XCTestCase {
    static let estimator: StereoVideoEstimator = {
        try! StereoVideoEstimator(network: DynamicStereoNetwork(stateDict: Golden.formulaStateDict()))
    }()

    /// A random-dot clip small enough to run many windows: 12 frames of 64x32 (multiples of 32, no padding).
    static let clip = RandomDotStereo(frames: 12, width: 64, height: 32, backgroundDisparity: 2, squareDisparity: 5,
                                      backgroundPan: 1, squarePan: 1, seed: 13)

    private func views(_ frames: Range<Int>) -> (left: Tensor, right: Tensor) {
        (Tensor(rgbFrames: frames.map { Self.clip.left(frame: $0) }), Tensor(rgbFrames: frames.map { Self.clip.right(frame: $0) }))
    }

    func testTheHookIsToldEveryIterationAtEveryScaleAndChangesNothing() throws {
        let (left, right) = views(0..<2)
        let network = Self.estimator.network
        for iters in [2, 3, 4] {
            var told: [(Int, Int)] = []
            let hooked = try network.forward(left: left, right: right, iters: iters, iterationDone: { told.append(($0, $1)) })
            let plain = try network.forward(left: left, right: right, iters: iters)
            // iters / 2 at 1/16, iters / 2 at 1/8, iters at 1/4.
            let expected = 2 * (iters / 2) + iters
            XCTAssertEqual(RefinementSchedule(iters: iters).iterations, expected)
            XCTAssertEqual(told.map(\.0), Array(1...expected), "iters \(iters)")
            XCTAssertTrue(told.allSatisfy { $0.1 == expected }, "iters \(iters): \(told)")
            XCTAssertEqual(hooked.flow.data, plain.flow.data, "the hook changes no value (iters \(iters))")
        }
    }

    func testAnOddKernelKeepsTheFirstWindowsResultOfEveryInputFrame() throws {
        let (frames, kernel, iters) = (12, 5, 2)
        var handed: [(WindowAssignment, Tensor)] = []
        var reports: [InferenceProgress] = []
        var asked: [Range<Int>] = []
        try Self.estimator.estimate(frames: frames, height: 32, width: 64, iters: iters, kernelSize: kernel,
                                    window: { range in asked.append(range); return views(range) },
                                    results: { handed.append(($0, $1)) }, progress: { reports.append($0) })
        // The reference's windows give 17 outputs here; one per input frame is kept, in order, each once.
        XCTAssertEqual(InferenceWindow.outputFrames(frames: frames, kernelSize: kernel).count, 17)
        let assignments = WindowAssignment.plan(frames: frames, kernelSize: kernel)
        XCTAssertEqual(handed.map(\.0), assignments)
        XCTAssertEqual(asked, assignments.map(\.inputFrames), "each window's frames asked for once, in order")
        XCTAssertEqual(handed.flatMap { Array($0.0.frames) }, Array(0..<frames))

        // Each frame is what the network gives on the first window keeping it, run alone.
        let network = Self.estimator.network
        for (assignment, disparity) in handed {
            XCTAssertEqual(disparity.shape, [assignment.frames.count, 32, 64])
            let (left, right) = views(assignment.inputFrames)
            let alone = try network.forward(left: left, right: right, iters: iters).flow
                .slice(assignment.keptPositions).map { abs($0) }
            XCTAssertEqual(disparity.data, alone.data, "window \(assignment.index)")
        }
        // Frame 3 is kept by windows 0 and 1: the result is window 0's, and window 1's would differ.
        let (left1, right1) = views(2..<7)
        let second = try network.forward(left: left1, right: right1, iters: iters).flow.slice(1..<2).map { abs($0) }
        let first = handed[0].1.slice(3..<4)
        XCTAssertNotEqual(first.data, second.data, "the two windows disagree on frame 3, so the rule matters")

        // Progress: every iteration at every scale of every window, then the window's end.
        let perWindow = RefinementSchedule(iters: iters).iterations
        XCTAssertEqual(reports.count, assignments.count * (perWindow + 1))
        var expected: [Int] = []
        for w in 0..<assignments.count {
            for i in 1...perWindow { expected.append(w * perWindow + i) }
            expected.append((w + 1) * perWindow)
        }
        XCTAssertEqual(reports.map(\.iterationsDone), expected)
        let total = assignments.count * perWindow
        XCTAssertTrue(reports.allSatisfy { $0.iterationsTotal == total }, "\(reports)")
        XCTAssertTrue(reports.allSatisfy { $0.framesTotal == frames }, "\(reports)")
        XCTAssertEqual(reports.last?.framesDone, frames)
        XCTAssertEqual(reports.last?.windowsDone, assignments.count)
        let last = try XCTUnwrap(reports.last)
        XCTAssertEqual(last.costDone, last.costTotal, accuracy: 1e-9)
        for (a, b) in zip(reports, reports.dropFirst()) { XCTAssertLessThanOrEqual(a.costDone, b.costDone) }
    }

    func testTheGatheredVideoIsTheStreamedWindowsInOrder() throws {
        var streamed: [Float] = []
        try Self.estimator.estimate(frames: 7, height: 32, width: 64, iters: 2, kernelSize: 4, window: views,
                                    results: { streamed += $1.data })
        let gathered = try Self.estimator.estimate(left: (0..<7).map { Self.clip.left(frame: $0) },
                                                   right: (0..<7).map { Self.clip.right(frame: $0) }, iters: 2, kernelSize: 4)
        XCTAssertEqual(gathered.shape, [7, 32, 64])
        XCTAssertEqual(gathered.data, streamed)
    }
}
