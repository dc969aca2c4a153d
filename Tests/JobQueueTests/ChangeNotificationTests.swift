// Migration 0010's change notifications, heard through a ChangeListener: every writer of a job's rows or of
// the API keys announces it (the API, a worker's claim, heartbeat, stored window and failure, the lease
// reaper, retention), a rolled-back write announces nothing, and a session ended under the listener is
// reported lost and listens again after its backoff. Each wait is for an event: a fence notification, which
// PostgreSQL delivers after those of every transaction committed before it.
import Foundation
@testable import JobQueue
import QueueTestSupport
import TestSupport
import XCTest

final class ChangeNotificationTests: QueueTestCase {
    private var log: ChangeLog!
    private var listener: ChangeListener!
    private let listenerClock = ManualClock()

    override func setUpWithError() throws {
        try super.setUpWithError()
        log = ChangeLog()
        let log = self.log!
        listener = try ChangeListener(url: url, clock: listenerClock) { log.record($0) }
        listener.start()
        XCTAssertTrue(log.wait(for: .listening))
    }

    override func tearDown() {
        listener?.stop()
        super.tearDown()
    }

    /// The changes reported for what `write` committed.
    private func changes(_ write: () throws -> Void) throws -> [StoreChange] {
        let mark = log.count
        try write()
        try log.fence(url)
        return log.since(mark)
    }

    private func assertAnnounces(_ id: UUID, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                                 _ write: () throws -> Void) throws {
        XCTAssertTrue(try changes(write).contains(.job(id)), "\(what) announced no change of job \(id)", file: file, line: line)
    }

    func testEveryWriterOfAJobAnnouncesIt() throws {
        let clock = ManualClock()
        let store = try JobStore(url: url, clock: clock)
        let queue = WorkerQueue(url: url, clock: clock)
        defer { queue.disconnect() }
        var id = UUID()
        let enqueued = try changes { id = try enqueue(store).id }
        XCTAssertTrue(enqueued.contains(.job(id)), "an enqueue announced no change of job \(id)")

        var window: ClaimedWindow?
        try assertAnnounces(id, "a claim") { window = try queue.claim(workerId: "w", leaseSeconds: 30) }
        let claimed = try XCTUnwrap(window)
        try assertAnnounces(id, "a heartbeat") {
            XCTAssertEqual(try queue.heartbeat(claimed, iterationsDone: 2, iterationsTotal: 4, leaseSeconds: 30), .held(cancelRequested: false))
        }
        // The reaper: the lease runs out on the clock, the window goes back to the queue.
        clock.advance(by: 60)
        try assertAnnounces(id, "the lease reaper") { XCTAssertEqual(try queue.expireLeases(backoff: RetryBackoff(base: 0, cap: 0)).count, 1) }
        clock.advance(by: 1)
        let again = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        try assertAnnounces(id, "a stored window") { XCTAssertTrue(try queue.succeed(again, frames: results(again))) }
        let step = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        try assertAnnounces(id, "the finishing step") {
            for frame in try queue.framesToRender(step) {
                XCTAssertTrue(try queue.storeRendered(step, frame: frame, RenderedFrame(colorPNG: Data([1]), videoPNG: nil)))
            }
            XCTAssertTrue(try queue.finish(step))
        }
        XCTAssertEqual(try store.job(id: id)?.status, .succeeded)
        clock.advance(by: 10)
        try assertAnnounces(id, "retention") { XCTAssertEqual(try queue.expireResults(olderThan: 5), [id]) }
        try assertAnnounces(id, "a delete") { XCTAssertTrue(try store.delete(id: id)) }

        let failing = try enqueue(store).id
        let doomed = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(doomed.jobId, failing)
        try assertAnnounces(failing, "a failure") { XCTAssertTrue(try queue.fail(doomed, error: JobErrorInfo(code: "bad_input", message: "x"))) }
        let cancelled = try enqueue(store).id
        try assertAnnounces(cancelled, "a cancel") { XCTAssertEqual(try store.cancel(id: cancelled)?.status, .cancelled) }
    }

    func testAKeyWriteAnnouncesTheKeysAndARolledBackWriteNothing() throws {
        let keys = try APIKeyStore(url: url)
        XCTAssertTrue(try changes { _ = try keys.create(name: "a", sha256: String(repeating: "a", count: 64)) }.contains(.keys))
        XCTAssertTrue(try changes { XCTAssertNotNil(try keys.revoke("a")) }.contains(.keys))
        XCTAssertTrue(try changes { try TestDatabase.psql(url, "DELETE FROM api_keys") }.contains(.keys))

        let id = try enqueue(try JobStore(url: url)).id
        try log.fence(url)
        let rolledBack = try changes {
            try TestDatabase.psql(url, "BEGIN; UPDATE jobs SET attempt = 7 WHERE id = '\(id)'; ROLLBACK")
        }
        XCTAssertEqual(rolledBack.count, 1, "only the fence: \(rolledBack)")
        XCTAssertFalse(rolledBack.contains(.job(id)))
    }

    func testALostSessionIsReportedAndListensAgainAfterItsBackoff() throws {
        let pid = try XCTUnwrap(listener.backendPID)
        let mark = log.count
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT pg_terminate_backend(\(pid))"), "t")
        XCTAssertTrue(log.wait(for: .lost, after: mark))
        XCTAssertNil(listener.backendPID)
        XCTAssertFalse(log.since(mark).contains(.listening), "the backoff runs on the clock, which stands still")
        listenerClock.advance(by: 1)
        XCTAssertTrue(log.wait(for: .listening, after: mark))
        XCTAssertNotEqual(listener.backendPID, pid)
        let id = try enqueue(try JobStore(url: url)).id
        try log.fence(url)
        XCTAssertTrue(log.since(mark).contains(.job(id)), "heard again on the new session")
    }

    func testStopReportsTheSessionLost() throws {
        let mark = log.count
        listener.stop()
        XCTAssertEqual(log.since(mark), [.lost])
        listener = nil
    }

    func testOnlyTheTriggersPayloadsAreChanges() {
        let id = UUID()
        XCTAssertEqual(ChangeListener.change(channel: "dynstereo_job_changes", payload: id.uuidString.lowercased()), .job(id))
        XCTAssertEqual(ChangeListener.change(channel: "dynstereo_key_changes", payload: ""), .keys)
        XCTAssertNil(ChangeListener.change(channel: "dynstereo_job_changes", payload: "not a job"))
        XCTAssertNil(ChangeListener.change(channel: "dynstereo_jobs", payload: id.uuidString))
    }
}
