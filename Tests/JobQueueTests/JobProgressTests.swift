// A job's progress from its windows: iterations at every scale, and an ETA weighed by what each scale costs.
import Foundation
@testable import JobQueue
import XCTest

final class JobProgressTests: XCTestCase {
    private func window(_ index: Int, _ frames: Range<Int>, _ status: JobStatus, iterationsDone: Int = 0) -> JobWindow {
        JobWindow(index: index, kind: .window, inputFrames: frames, resultFrames: frames, status: status, attempt: 1,
                  workerId: nil, iterationsDone: iterationsDone, iterationsTotal: nil, error: nil)
    }

    func testIterationsCountEveryScaleAndTheETAWeighsThemByTheirCost() throws {
        let iters = 4  // 2 at 1/16, 2 at 1/8, 4 at 1/4: 8 iterations a window
        let started = Date(timeIntervalSince1970: 1_000_000)
        let now = started.addingTimeInterval(100)
        let finish = JobWindow(index: 3, kind: .finish, inputFrames: 0..<15, resultFrames: 0..<0, status: .queued, attempt: 0,
                               workerId: nil, iterationsDone: 0, iterationsTotal: nil, error: nil)
        func progress(running iterations: Int) -> JobProgress {
            JobProgress(iters: iters, status: .running, startedAt: started,
                        windows: [window(0, 0..<5, .succeeded), window(1, 5..<10, .running, iterationsDone: iterations),
                                  window(2, 10..<15, .queued), finish], now: now)
        }
        let early = progress(running: 2)
        XCTAssertEqual(early.windowsDone, 1)
        XCTAssertEqual(early.windowsTotal, 3)
        XCTAssertEqual(early.iterationsTotal, 24)
        XCTAssertEqual(early.iterationsDone, 10)
        XCTAssertEqual(early.framesReady, [0..<5])

        // A window's cost per frame: 2/256 + 2/64 + 4/16. Done: one window and the running one's two 1/16 iterations.
        let perFrame: Double = 2.0 / 256 + 2.0 / 64 + 4.0 / 16
        let perWindow = 5 * perFrame
        let done: Double = perWindow + 5 * 2.0 / 256
        let expectedEarly: Double = 100 / done * (3 * perWindow - done)
        XCTAssertEqual(try XCTUnwrap(early.etaSeconds), expectedEarly, accuracy: 1e-9)

        // Two more iterations at 1/4 are worth 16 times two at 1/16: the estimate falls by their cost, not their count.
        let later = progress(running: 6)
        XCTAssertEqual(later.iterationsDone, 14)
        let runningLater: Double = 2.0 / 256 + 2.0 / 64 + 2.0 / 16
        let doneLater = perWindow + 5 * runningLater
        let expectedLater: Double = 100 / doneLater * (3 * perWindow - doneLater)
        let etaLater = try XCTUnwrap(later.etaSeconds)
        XCTAssertEqual(etaLater, expectedLater, accuracy: 1e-9)
        XCTAssertLessThan(etaLater, expectedEarly)
        // A count-based estimate would say 100 / 14 * 10 s here.
        let byCount: Double = 100.0 / 14 * 10
        XCTAssertGreaterThan(abs(etaLater - byCount), 1)

        // Reported iterations beyond a window's own are not believed.
        XCTAssertEqual(progress(running: 99).iterationsDone, 16)
    }

    func testNoETABeforeAWindowIsStoredNorAfterTheEnd() {
        let started = Date(timeIntervalSince1970: 1_000_000)
        let running = JobProgress(iters: 4, status: .running, startedAt: started,
                                  windows: [window(0, 0..<5, .running, iterationsDone: 7), window(1, 5..<10, .queued)],
                                  now: started.addingTimeInterval(50))
        XCTAssertEqual(running.iterationsDone, 7)
        XCTAssertNil(running.etaSeconds, "the encoder's time before the first iteration is in no count: no speed yet")
        let ended = JobProgress(iters: 4, status: .succeeded, startedAt: started,
                                windows: [window(0, 0..<5, .succeeded), window(1, 5..<10, .succeeded)],
                                now: started.addingTimeInterval(50))
        XCTAssertNil(ended.etaSeconds)
        XCTAssertEqual(ended.iterationsDone, ended.iterationsTotal)
        XCTAssertEqual(ended.framesReady, [0..<10])
    }
}
