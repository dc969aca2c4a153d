// Per-key limits in the enqueue transaction, against a real PostgreSQL: queued jobs at once (also under
// concurrent submissions), bytes per UTC day, a key's own values over the server's defaults, and
// idempotency keys scoped per API key.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class KeyLimitTests: QueueTestCase {
    private var keys: APIKeyStore!

    override func setUpWithError() throws {
        try super.setUpWithError()
        keys = try APIKeyStore(url: url)
    }

    /// A key whose stored hash is derived from its name (the store never sees keys themselves).
    private func key(_ name: String, maxQueuedJobs: Int? = nil, maxUploadBytesPerDay: Int? = nil) throws -> UUID {
        let hash = String(repeating: String(format: "%02x", name.utf8.reduce(0) { ($0 &+ $1) }), count: 32)
        return try keys.create(name: name, sha256: hash, maxQueuedJobs: maxQueuedJobs, maxUploadBytesPerDay: maxUploadBytesPerDay).id
    }

    private func submit(_ store: JobStore, owner: UUID?, bytes: Int = 0, idempotencyKey: String? = nil,
                        digest: String? = nil) throws -> (job: JobRecord, created: Bool) {
        try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(1), idempotencyKey: idempotencyKey,
                          payloadDigest: digest, owner: owner, uploadBytes: bytes)
    }

    private func count(_ sql: String) throws -> Int { Int(try TestDatabase.psql(url, sql)) ?? -1 }

    func testQueuedJobsLimitCountsUnfinishedJobsAndUsesTheKeysOwnValueOverTheDefault() throws {
        let store = try JobStore(url: url, defaultKeyLimits: KeyLimits(maxQueuedJobs: 2))
        let byDefault = try key("default")
        let ownLimit = try key("own", maxQueuedJobs: 4)
        for _ in 0..<2 { XCTAssertTrue(try submit(store, owner: byDefault).created) }
        XCTAssertThrowsError(try submit(store, owner: byDefault)) { error in
            XCTAssertEqual(error as? JobQueueError, .queuedJobsLimit(limit: 2))
        }
        for _ in 0..<4 { XCTAssertTrue(try submit(store, owner: ownLimit).created) }
        XCTAssertThrowsError(try submit(store, owner: ownLimit)) { error in
            XCTAssertEqual(error as? JobQueueError, .queuedJobsLimit(limit: 4), "the key's own 4 wins over the default 2")
        }
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 6, "refused submissions stored nothing")
        XCTAssertEqual(try count("SELECT count(*) FROM job_inputs"), 6)

        // A running job still counts; a finished one frees its slot. The oldest job, the default key's
        // first, is the one claimed.
        let claimed = try XCTUnwrap(try WorkerQueue(url: url).claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(try store.usage(of: byDefault)?.unfinishedJobs, 2)
        XCTAssertEqual(try store.usage(of: byDefault)?.atQueuedJobsLimit, true)
        XCTAssertThrowsError(try submit(store, owner: byDefault), "a running job counts")
        try TestDatabase.psql(url, "UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = '\(claimed.jobId.uuidString)'")
        XCTAssertTrue(try submit(store, owner: byDefault).created, "a finished job no longer counts")
    }

    func testOpenServerJobsHaveNoPerKeyLimits() throws {
        let store = try JobStore(url: url, defaultKeyLimits: KeyLimits(maxQueuedJobs: 1, maxUploadBytesPerDay: 10))
        for _ in 0..<3 { XCTAssertTrue(try submit(store, owner: nil, bytes: 1_000).created) }
        XCTAssertEqual(try count("SELECT count(*) FROM api_key_uploads"), 0)
    }

    func testConcurrentSubmissionsByOneKeyNeverPassTheLimit() throws {
        let store = try JobStore(url: url, defaultKeyLimits: KeyLimits(maxQueuedJobs: 3))
        let owner = try key("busy")
        let outcomes = LockedArray<Result<Bool, Error>>()
        // Eight submissions at once, each on its own pooled connection, all past any early check.
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            outcomes.append(Result { try submit(store, owner: owner).created })
        }
        let created = outcomes.values.filter { (try? $0.get()) == true }.count
        let refused = outcomes.values.filter {
            if case let .failure(error) = $0 { return error as? JobQueueError == .queuedJobsLimit(limit: 3) }
            return false
        }.count
        XCTAssertEqual(created, 3, "\(outcomes.values)")
        XCTAssertEqual(refused, 5, "\(outcomes.values)")
        XCTAssertEqual(try count("SELECT count(*) FROM jobs WHERE api_key_id = '\(owner.uuidString)'"), 3)
    }

    func testDailyUploadBytesAreCountedAndRefusedPastTheLimit() throws {
        let store = try JobStore(url: url, defaultKeyLimits: KeyLimits(maxUploadBytesPerDay: 1_000))
        let owner = try key("uploader")
        let ownLimit = try key("generous", maxUploadBytesPerDay: 5_000)
        XCTAssertTrue(try submit(store, owner: owner, bytes: 400).created)
        XCTAssertTrue(try submit(store, owner: owner, bytes: 400, idempotencyKey: "k", digest: "d").created)
        XCTAssertFalse(try submit(store, owner: owner, bytes: 400, idempotencyKey: "k", digest: "d").created,
                       "a replay is not a new upload")
        XCTAssertEqual(try store.usage(of: owner), KeyUsage(limits: KeyLimits(maxUploadBytesPerDay: 1_000), unfinishedJobs: 2,
                                                           uploadedBytesToday: 800))
        XCTAssertEqual(try store.usage(of: owner)?.remainingUploadBytes, 200)
        XCTAssertThrowsError(try submit(store, owner: owner, bytes: 201)) { error in
            XCTAssertEqual(error as? JobQueueError, .dailyUploadLimit(limit: 1_000, used: 800, requested: 201))
        }
        XCTAssertTrue(try submit(store, owner: owner, bytes: 200).created, "exactly the remaining allowance fits")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT day = (now() AT TIME ZONE 'UTC')::date, bytes FROM api_key_uploads WHERE api_key_id = '\(owner.uuidString)'"),
                       "t|1000", "one row per key and UTC day")
        // A first upload of the day larger than the whole limit is refused too (no row to update).
        XCTAssertThrowsError(try submit(store, owner: ownLimit, bytes: 5_001)) { error in
            XCTAssertEqual(error as? JobQueueError, .dailyUploadLimit(limit: 5_000, used: 0, requested: 5_001))
        }
        XCTAssertTrue(try submit(store, owner: ownLimit, bytes: 4_000).created, "the key's own 5000 wins over the default 1000")
        // Yesterday's bytes do not count today.
        try TestDatabase.psql(url, "UPDATE api_key_uploads SET day = day - 1 WHERE api_key_id = '\(owner.uuidString)'")
        XCTAssertTrue(try submit(store, owner: owner, bytes: 900).created)
        XCTAssertEqual(try count("SELECT count(*) FROM jobs"), 5)
    }

    func testIdempotencyKeysAreScopedPerAPIKey() throws {
        let store = try JobStore(url: url)
        let alice = try key("alice")
        let bob = try key("bob")
        let hers = try submit(store, owner: alice, idempotencyKey: "same", digest: "a")
        let his = try submit(store, owner: bob, idempotencyKey: "same", digest: "b")
        let open = try submit(store, owner: nil, idempotencyKey: "same", digest: "c")
        XCTAssertTrue(hers.created && his.created && open.created, "the same Idempotency-Key under another API key is another job")
        XCTAssertEqual(Set([hers.job.id, his.job.id, open.job.id]).count, 3)
        XCTAssertEqual(try submit(store, owner: bob, idempotencyKey: "same", digest: "b").job.id, his.job.id)
        XCTAssertFalse(try submit(store, owner: nil, idempotencyKey: "same", digest: "c").created, "open-mode jobs share one scope")
        XCTAssertThrowsError(try submit(store, owner: bob, idempotencyKey: "same", digest: "other")) { error in
            XCTAssertEqual(error as? JobQueueError, .idempotencyConflict(key: "same", existing: his.job.id),
                           "a clash names the asking key's own job, never another key's")
        }
    }
}
