// The lifecycle table: transitions stay inside the diagram, every arrow has a transition, and terminal states
// have no exits.
@testable import JobQueue
import XCTest

final class JobStatusTests: XCTestCase {
    func testEveryNamedTransitionIsAnArrowOfTheLifecycle() {
        // `to` is a plain table lookup, so a wrong entry fails this assertion instead of trapping first.
        for transition in JobTransition.allCases {
            XCTAssertTrue(transition.from.canMove(to: transition.to), "\(transition) moves \(transition.from) to \(transition.to)")
            XCTAssertFalse(transition.from.isTerminal, "\(transition) leaves a terminal state")
        }
    }

    func testEveryArrowOfTheLifecycleHasANamedTransition() {
        for from in JobStatus.allCases {
            for to in JobStatus.allCases where from.canMove(to: to) {
                XCTAssertTrue(JobTransition.allCases.contains { $0.from == from && $0.to == to },
                              "the arrow \(from) -> \(to) has no JobTransition, so no query can make it")
            }
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
        XCTAssertEqual(JobStatus.terminal, [.succeeded, .failed, .cancelled], "the order migration 0004's index lists them in")
        XCTAssertEqual(JobStatus.unfinished, [.queued, .running], "the order migration 0003's index lists them in")
        XCTAssertEqual(JobStatus.initial, JobTransition.claim.from, "a new job is one a worker can claim")
    }
}
