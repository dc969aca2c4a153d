import XCTest
@testable import VideoPlan

/// Window cutting against an independent reading of the reference's Python.
final class InferenceWindowTests: XCTestCase {
    /// Python's `d[a:b]` on a list, with negative bounds and clamping, as the reference's slices behave.
    private func pythonSlice(_ d: [Int], _ a: Int?, _ b: Int?) -> [Int] {
        func resolve(_ i: Int?, _ fallback: Int) -> Int {
            guard let i else { return fallback }
            return i < 0 ? max(0, d.count + i) : min(i, d.count)
        }
        let (lo, hi) = (resolve(a, 0), resolve(b, d.count))
        return lo < hi ? Array(d[lo..<hi]) : []
    }

    /// Python's floor division.
    private func floorDiv(_ a: Int, _ b: Int) -> Int { Int((Double(a) / Double(b)).rounded(.down)) }

    /// The frames forward_batch_test returns, replayed with Python semantics (no one-window exception).
    private func referenceFrames(_ n: Int, _ k: Int) -> [Int] {
        let stride = k / 2
        var out: [[Int]] = []
        for i in Swift.stride(from: 0, to: n, by: stride) {
            let d = Array(i..<min(i + k, n))
            if !out.isEmpty && d.count >= stride {
                out.append(d.count < k ? pythonSlice(d, stride / 2, nil) : pythonSlice(d, stride / 2, floorDiv(-stride, 2)))
            } else if out.isEmpty {
                out.append(pythonSlice(d, nil, floorDiv(-stride, 2)))
            }
        }
        return out.flatMap { $0 }
    }

    func testWindowsFollowTheReferenceForLongVideos() {
        for k in 2...22 {
            for n in (k + 1)...(3 * k + 5) {
                XCTAssertEqual(InferenceWindow.outputFrames(frames: n, kernelSize: k), referenceFrames(n, k),
                               "frames \(n), kernel size \(k)")
            }
        }
        // Set C of the golden data: 9 frames, kernel size 4, every frame once.
        XCTAssertEqual(InferenceWindow.outputFrames(frames: 9, kernelSize: 4), Array(0..<9))
    }

    func testAVideoNoLongerThanAWindowKeepsEveryFrame() {
        for k in [2, 4, 5, 20] {
            for n in 1...k {
                XCTAssertEqual(InferenceWindow.plan(frames: n, kernelSize: k), [InferenceWindow(start: 0, length: n, keep: 0..<n)])
            }
        }
        // The reference itself would return nothing for 5 frames in a window of 20.
        XCTAssertEqual(referenceFrames(5, 20), [])
    }
}
