// Frame names of their own (migration 0009): stored in the enqueue's transaction only when they are not the
// source indices, read with the job's report, and only flagged in a list.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class FrameNamesRuleTests: XCTestCase {
    func testResultNamesDropOnePNGExtensionOfAnyCase() {
        XCTAssertEqual(FrameNames.resultName("0007.png"), "0007")
        XCTAssertEqual(FrameNames.resultName("img_17.PNG"), "img_17")
        XCTAssertEqual(FrameNames.resultName("left-000123"), "left-000123")
        XCTAssertEqual(FrameNames.resultName("a.png.png"), "a.png")
        XCTAssertEqual(FrameNames.resultName("frame.jpg"), "frame.jpg")
    }

    func testOnlyNamesOtherThanTheSelectionsSourceIndicesAreStored() {
        XCTAssertNil(FrameNames.toStore(["0000", "0001", "0002"], selection: .all))
        XCTAssertNil(FrameNames.toStore(["0003", "0005", "0007"], selection: FrameSelection(start: 3, step: 2)))
        XCTAssertNil(FrameNames.toStore(["9998", "9999", "10000"], selection: FrameSelection(start: 9998)), "wider past 9999")
        XCTAssertEqual(FrameNames.toStore(["0000", "0001"], selection: FrameSelection(start: 3)), ["0000", "0001"],
                       "default-looking names that are not these frames' source indices")
        XCTAssertEqual(FrameNames.toStore(["0000", "0002"], selection: .all), ["0000", "0002"], "one gap is enough")
        XCTAssertEqual(FrameNames.toStore(["0", "1"], selection: .all), ["0", "1"], "not zero-padded")
        XCTAssertEqual(FrameNames.toStore(["img_17", "img_18"], selection: .all), ["img_17", "img_18"])
    }
}

final class FrameNamesStoreTests: QueueTestCase {
    private func frames(named names: [String]) -> [InputFrame] {
        names.enumerated().map { index, name in
            InputFrame(index: index, name: name, left: Data([UInt8(index), 1]), right: Data([UInt8(index), 2]))
        }
    }

    private func enqueue(_ store: JobStore, names: [String], selection: FrameSelection = .all) throws -> UUID {
        try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3, selection: selection), frames: frames(named: names),
                          idempotencyKey: nil, payloadDigest: nil).job.id
    }

    private func storedNames(_ id: UUID) throws -> String {
        try TestDatabase.psql(url, "SELECT coalesce(frame_names::text, 'NULL') FROM jobs WHERE id = '\(id)'")
    }

    func testOwnNamesAreStoredInOrderAndTheJobsReportReadsThem() throws {
        let store = try JobStore(url: url)
        // Names the array literal must quote (a comma, braces, quotes, a backslash, one spelt NULL) read back exactly.
        let names = ["img_07.png", "img_17.PNG", "left-000123", "a,b", "{c}", "say \"hi\"", "back\\slash", "NULL"]
        let id = try enqueue(store, names: names)
        let expected = ["img_07", "img_17", "left-000123", "a,b", "{c}", "say \"hi\"", "back\\slash", "NULL"]
        XCTAssertEqual(try store.report(id: id)?.frameNames, .own(expected))
        XCTAssertEqual(try store.reports(status: nil, limit: 10, after: nil).jobs.map(\.frameNames), [.ownUnread],
                       "a list says that the job has names, not which")
        // The worker reads the inputs' names as uploaded; the stored list is their result names.
        let queue = WorkerQueue(url: url)
        let window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try queue.inputs(of: window).map(\.name), Array(names[window.window.inputFrames]))
    }

    func testSourceIndexNamesStoreNothing() throws {
        let store = try JobStore(url: url)
        let plain = try enqueue(store, names: ["0000.png", "0001.png", "0002.png"])
        let selected = try enqueue(store, names: ["0003", "0005"], selection: FrameSelection(start: 3, step: 2, count: 2))
        let shifted = try enqueue(store, names: ["0000", "0001"], selection: FrameSelection(start: 3))
        XCTAssertEqual(try storedNames(plain), "NULL")
        XCTAssertEqual(try storedNames(selected), "NULL")
        XCTAssertEqual(try storedNames(shifted), "{0000,0001}", "the selection's indices are 3 and 4, not these")
        XCTAssertEqual(try store.report(id: plain)?.frameNames, .sourceIndices)
        XCTAssertEqual(try store.report(id: selected)?.frameNames, .sourceIndices)
        XCTAssertEqual(try store.report(id: shifted)?.frameNames, .own(["0000", "0001"]))
        // Newest first.
        XCTAssertEqual(try store.reports(status: nil, limit: 10, after: nil).jobs.map(\.frameNames),
                       [.ownUnread, .sourceIndices, .sourceIndices])
    }

    func testAVideoJobStoresNoNames() throws {
        let store = try JobStore(url: url)
        let upload = FileManager.default.temporaryDirectory.appendingPathComponent("names-\(UUID().uuidString).bin")
        try Data("not decoded here".utf8).write(to: upload)
        defer { try? FileManager.default.removeItem(at: upload) }
        let job = try store.enqueueVideo(parameters: JobParameters(iters: 2, kernelSize: 3), frameCount: 4, source: .sbs,
                                         videoRate: "30/1", uploads: [(part: "stereo", file: upload)],
                                         idempotencyKey: nil, payloadDigest: nil).job
        XCTAssertEqual(try storedNames(job.id), "NULL")
        XCTAssertEqual(try store.report(id: job.id)?.frameNames, .sourceIndices)
    }
}

/// Migration 0009 on a database with jobs stored before it: they read as named by source index, and the
/// column refuses a list that does not name every frame once.
final class FrameNamesMigrationTests: XCTestCase {
    func testJobsStoredBeforeTheMigrationHaveNoNamesAndTheColumnChecksItsLists() throws {
        let (oldURL, oldSchema) = try TestDatabase.makeSchema("names_upgrade")
        defer { TestDatabase.dropSchema(oldSchema) }
        try Migrator(url: oldURL, migrations: Array(Migrations.all.prefix(8))).run()
        let store = try JobStore(url: oldURL)
        // Stored through the old schema's columns only, as a binary of migration 0008 would.
        let old = UUID()
        try TestDatabase.psql(oldURL, """
            INSERT INTO jobs (id, status, iters, kernel_size, max_attempts, frames_total) VALUES ('\(old)', 'queued', 2, 3, 3, 2);
            INSERT INTO job_inputs SELECT '\(old)', i, format('img_%s', i), '\\x01', '\\x02' FROM generate_series(0, 1) AS i;
            """)
        XCTAssertEqual(try Migrator(url: oldURL).run(), [9, 10])
        XCTAssertEqual(try TestDatabase.psql(oldURL, "SELECT name FROM schema_migrations WHERE version = 9"), "frame_names")
        XCTAssertEqual(try store.report(id: old)?.frameNames, .sourceIndices)
        for bad in ["'{a}'", "'{a,b,c}'", "ARRAY['a', NULL]"] {
            XCTAssertThrowsError(try TestDatabase.psql(oldURL, "UPDATE jobs SET frame_names = \(bad) WHERE id = '\(old)'"), bad) { error in
                XCTAssertTrue("\(error)".contains("jobs_frame_names_one_per_frame"), "\(error)")
            }
        }
        try TestDatabase.psql(oldURL, "UPDATE jobs SET frame_names = '{img_0,img_1}' WHERE id = '\(old)'")
        XCTAssertEqual(try store.report(id: old)?.frameNames, .own(["img_0", "img_1"]))
    }
}
