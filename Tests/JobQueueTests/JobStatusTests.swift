// The lifecycle table: transitions stay inside the diagram and terminal states have no exits.
@testable import JobQueue
import XCTest

final class JobStatusTests: XCTestCase {
    func testEveryNamedTransitionIsAnArrowOfTheLifecycle() {
        for transition in JobTransition.allCases {
            XCTAssertTrue(transition.from.canMove(to: transition.to), "\(transition)")
            XCTAssertFalse(transition.from.isTerminal, "\(transition) leaves a terminal state")
        }
    }

    func testTerminalStatesHaveNoExitsAndNothingReturnsToAFreshStart() {
        for from in JobStatus.allCases where from.isTerminal {
            XCTAssertTrue(JobStatus.allCases.allSatisfy { !from.canMove(to: $0) }, "\(from) has an exit")
        }
        XCTAssertFalse(JobStatus.queued.canMove(to: .succeeded), "a job must run before it succeeds")
        XCTAssertFalse(JobStatus.queued.canMove(to: .failed), "only a worker or the reaper fails a job")
        XCTAssertFalse(JobStatus.running.canMove(to: .running))
        XCTAssertEqual(JobStatus.allCases.filter(\.isTerminal), [.succeeded, .failed, .cancelled])
    }
}
