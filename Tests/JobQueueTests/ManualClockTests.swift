// The test clock: it stands still, statements run at its time, and moving it releases exactly the waits
// whose deadline it passes.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class ManualClockTests: QueueTestCase {
    func testStatementsRunAtTheClocksTime() throws {
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_000_000_000.25))
        let store = try JobStore(url: url, clock: clock)
        let first = try enqueue(store)
        XCTAssertEqual(first.createdAt, clock.now(), "stored at the clock's time, to the microsecond")
        clock.advance(by: 3600)
        let claimed = try XCTUnwrap(try WorkerQueue(url: url, clock: clock).claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try store.job(id: claimed.jobId)?.startedAt, Date(timeIntervalSince1970: 1_000_003_600.25))
        let expiry = try TestDatabase.psql(url, "SELECT extract(epoch FROM lease_expires_at - heartbeat_at) FROM job_windows WHERE lease = 1")
        XCTAssertEqual(Double(expiry) ?? 0, 30, accuracy: 1e-6)
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT extract(epoch FROM heartbeat_at) FROM job_windows WHERE lease = 1"), "1000003600.250000")
        XCTAssertNil(SystemClock.shared.statementTime, "the real clock leaves now() to PostgreSQL")
    }

    func testAdvancingReleasesAWaitWhoseDeadlineItPasses() {
        let clock = ManualClock()
        let condition = NSCondition()
        let deadline = clock.now().addingTimeInterval(10)
        let released = DispatchSemaphore(value: 0)
        let results = LockedArray<Bool>()
        Thread {
            condition.withLock {
                var passed = false
                while !passed { passed = clock.wait(condition, until: deadline) }
                results.append(passed)
            }
            released.signal()
        }.start()
        clock.advance(by: 4)
        XCTAssertEqual(results.values, [], "4 s of 10: the wait goes on")
        clock.advance(by: 6)
        XCTAssertEqual(released.wait(timeout: .now() + 180), .success, "10 s of 10 release it")
        XCTAssertEqual(results.values, [true])
        condition.withLock { XCTAssertTrue(clock.wait(condition, until: deadline), "a deadline already passed does not wait") }
    }
}
