import VideoPlan
import XCTest

final class RefinementScheduleTests: XCTestCase {
    func testTheCascadeAndWhatItsIterationsCost() {
        let schedule = RefinementSchedule(iters: 5)
        XCTAssertEqual(schedule.scales.map(\.stride), [16, 8, 4])
        XCTAssertEqual(schedule.scales.map(\.iterations), [2, 2, 5])
        XCTAssertEqual(schedule.iterations, 9)
        // An iteration costs its scale's pixels: one at 1/4 is 16 at 1/16 and 4 at 1/8.
        XCTAssertEqual(schedule.cost(ofFirst: 1), 1.0 / 256)
        XCTAssertEqual(schedule.cost(ofFirst: 2), 2.0 / 256)
        let three: Double = 2.0 / 256 + 1.0 / 64
        XCTAssertEqual(schedule.cost(ofFirst: 3), three)
        XCTAssertEqual(schedule.cost(ofFirst: 5) - schedule.cost(ofFirst: 4), 1.0 / 16)
        let whole: Double = 2.0 / 256 + 2.0 / 64 + 5.0 / 16
        XCTAssertEqual(schedule.cost, whole)
        XCTAssertEqual(schedule.cost(ofFirst: 99), schedule.cost, "clamped to the window's iterations")
        XCTAssertEqual(schedule.cost(ofFirst: -1), 0)
        XCTAssertEqual(RefinementSchedule(iters: 2).iterations, 4)
        XCTAssertEqual(RefinementSchedule(iters: 20).iterations, 40)
    }
}
