import VideoPlan
import XCTest

/// Frame selection's order of rules, frame names, and the `outputs` list.
final class FrameSelectionTests: XCTestCase {
    func testSkipThenStrideThenCap() {
        XCTAssertEqual(FrameSelection.all.indices(of: 4), [0, 1, 2, 3])
        XCTAssertEqual(FrameSelection(start: 2).indices(of: 5), [2, 3, 4])
        XCTAssertEqual(FrameSelection(start: 1, step: 3).indices(of: 10), [1, 4, 7])
        XCTAssertEqual(FrameSelection(start: 1, step: 3, count: 2).indices(of: 10), [1, 4])
        XCTAssertEqual(FrameSelection(start: 10).indices(of: 10), [])
        XCTAssertEqual(FrameSelection(start: 1, step: 3, count: 2).framesToRead(of: 10), 5)
        var kept = 0
        let selection = FrameSelection(start: 1, step: 2, count: 2)
        let streamed = (0..<10).filter { index in
            let keep = selection.keeps(index, keptBefore: kept)
            if keep { kept += 1 }
            return keep
        }
        XCTAssertEqual(streamed, selection.indices(of: 10))
    }

    func testRulesAreWordedPerSurface() {
        XCTAssertNil(FrameSelection(start: 0, step: 1, count: 1).problem(for: .http))
        XCTAssertEqual(FrameSelection(start: -1).problem(for: .commandLine), "--start-frame must be 0 or more, got -1")
        XCTAssertEqual(FrameSelection(step: 0).problem(for: .http), "frame_step must be 1 or more, got 0")
        XCTAssertEqual(FrameSelection(count: 0).problem(for: .commandLine), "--frame-count must be 1 or more, got 0")
    }

    func testFrameNamesArePaddedToFourDigitsAndGrowPastThem() {
        XCTAssertEqual(FrameSelection.frameName(0), "0000")
        XCTAssertEqual(FrameSelection.frameName(42), "0042")
        XCTAssertEqual(FrameSelection.frameName(9999), "9999")
        XCTAssertEqual(FrameSelection.frameName(12345), "12345")
    }

    func testOutputsListDefaultsAndErrors() throws {
        XCTAssertEqual(try ResultKind.parse(nil, calibrated: false, surface: .http),
                       [.npy, .disparity, .color, .video, .videoMP4, .colorMP4])
        XCTAssertEqual(try ResultKind.parse(nil, calibrated: true, surface: .http), Set(ResultKind.allCases))
        XCTAssertEqual(try ResultKind.parse("npy, color_mp4", calibrated: false, surface: .http), [.npy, .colorMP4])
        XCTAssertThrowsError(try ResultKind.parse("npy,depth", calibrated: false, surface: .commandLine)) { error in
            XCTAssertEqual("\(error)", "--outputs: depth needs --focal-px and --baseline-m")
        }
        XCTAssertThrowsError(try ResultKind.parse("npy,,color", calibrated: true, surface: .http)) { error in
            XCTAssertTrue("\(error)".hasPrefix("outputs: unknown result ''"), "\(error)")
        }
    }
}
