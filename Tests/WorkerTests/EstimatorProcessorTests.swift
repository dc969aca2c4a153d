// The real processor on one window: it reports every refinement iteration at every scale to the heartbeat's
// callback, and gives the rows of exactly the frames the window answers for.
import Foundation
@testable import JobQueue
import Media
import TestSupport
import Worker
import XCTest

final class EstimatorProcessorTests: XCTestCase {
    func testEveryIterationAtEveryScaleIsReportedAndOnlyTheWindowsOwnFramesAreKept() throws {
        let processor = try EstimatorProcessor(checkpoint: SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth"))
        let clip = RandomDotStereo(frames: 5, width: 64, height: 32, backgroundDisparity: 2, squareDisparity: 5,
                                   backgroundPan: 1, squarePan: 1, seed: 7)
        // The second window of a 7-frame video with kernel 4: frames 2..<6, answering for 3..<5.
        let frames = try (2..<6).map { t in
            InputFrame(index: t, name: String(format: "%04d.png", t), left: try PNG.encodeRGB8(clip.left(frame: t - 2)),
                       right: try PNG.encodeRGB8(clip.right(frame: t - 2)))
        }
        let window = JobWindow(index: 1, kind: .window, inputFrames: 2..<6, resultFrames: 3..<5, status: .running, attempt: 1,
                               workerId: "test", iterationsDone: 0, iterationsTotal: nil, error: nil)
        let claimed = ClaimedWindow(jobId: UUID(), lease: 1, window: window,
                                    parameters: InferenceParameters(iters: 5, kernelSize: 4), framesTotal: 7)
        var reported: [(Int, Int)] = []
        let results = try processor.process(window: claimed, frames: frames, progress: { reported.append(($0, $1)) },
                                            isCancelled: { false })
        // iters 5: 2 at 1/16, 2 at 1/8, 5 at 1/4, each told as it ends, then the window's end.
        XCTAssertEqual(reported.map(\.0), Array(1...9) + [9])
        XCTAssertTrue(reported.allSatisfy { $0.1 == 9 }, "\(reported)")
        XCTAssertEqual(results.map(\.frameIndex), [3, 4])
        XCTAssertEqual(results.map(\.name), ["0003", "0004"])
        for result in results {
            XCTAssertEqual([result.width, result.height, result.disparity.count], [64, 32, 64 * 32 * 4])
        }
    }
}
