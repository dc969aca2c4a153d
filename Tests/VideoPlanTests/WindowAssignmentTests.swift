import XCTest
import VideoPlan

/// Every input frame gets exactly one result, from the first window of the reference's plan that keeps it.
final class WindowAssignmentTests: XCTestCase {
    func testEveryFrameOnceInOrderFromTheFirstWindowThatKeepsIt() {
        for kernel in 2...24 {
            for frames in [1, 2, 3, 5, 7, 12, 13, 40, 41, 100, 480] {
                let assignments = WindowAssignment.plan(frames: frames, kernelSize: kernel)
                XCTAssertEqual(assignments.flatMap { Array($0.frames) }, Array(0..<frames), "kernel \(kernel), \(frames) frames")
                XCTAssertEqual(assignments.map(\.index), Array(assignments.indices))
                // The first keeper of each frame is the window the assignment names.
                var firstKeeper: [Int: InferenceWindow] = [:]
                for window in InferenceWindow.plan(frames: frames, kernelSize: kernel) {
                    for position in window.keep where firstKeeper[window.start + position] == nil {
                        firstKeeper[window.start + position] = window
                    }
                }
                for assignment in assignments {
                    for frame in assignment.frames { XCTAssertEqual(firstKeeper[frame], assignment.window) }
                    XCTAssertEqual(assignment.keptPositions.count, assignment.frames.count)
                }
            }
        }
    }

    func testOddKernelDropsTheRepeatedResults() {
        // The reference keeps 17 results for kernel 5 on 12 frames; one per frame stays.
        XCTAssertEqual(InferenceWindow.outputFrames(frames: 12, kernelSize: 5).count, 17)
        let assignments = WindowAssignment.plan(frames: 12, kernelSize: 5)
        XCTAssertEqual(assignments.reduce(0) { $0 + $1.frames.count }, 12)
        // An even kernel repeats nothing, so every window of the plan runs and keeps what it kept.
        let even = WindowAssignment.plan(frames: 480, kernelSize: 10)
        XCTAssertEqual(even.map(\.window), InferenceWindow.plan(frames: 480, kernelSize: 10))
        XCTAssertEqual(even.map(\.keptPositions), even.map(\.window.keep))
    }
}
