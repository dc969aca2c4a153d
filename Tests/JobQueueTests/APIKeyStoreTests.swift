// API keys in PostgreSQL: created by hash, listed, revoked by name or id, looked up by hash.
import Foundation
import JobQueue
import TestSupport
import XCTest

final class APIKeyStoreTests: QueueTestCase {
    private func hash(_ seed: Character) -> String { String(repeating: seed, count: 64) }

    func testCreateListLookUpAndRevoke() throws {
        let keys = try APIKeyStore(url: url)
        XCTAssertFalse(try keys.anyKeys(), "a fresh schema has no keys")
        let alice = try keys.create(name: "alice", sha256: hash("a"), maxQueuedJobs: 3, maxUploadBytesPerDay: 1 << 30)
        let bob = try keys.create(name: "bob", sha256: hash("b"))
        XCTAssertTrue(try keys.anyKeys())
        XCTAssertEqual(alice.maxQueuedJobs, 3)
        XCTAssertEqual(alice.maxUploadBytesPerDay, 1 << 30)
        XCTAssertNil(bob.maxQueuedJobs, "no limit given: the server's default applies")
        XCTAssertEqual(try keys.list().map(\.name), ["alice", "bob"])
        XCTAssertEqual(try keys.key(sha256: hash("a")), alice)
        XCTAssertNil(try keys.key(sha256: hash("c")), "an unknown key")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT key_sha256 FROM api_keys WHERE name = 'alice'"), hash("a"),
                       "only the hash is stored")

        let revoked = try XCTUnwrap(try keys.revoke("alice"))
        XCTAssertTrue(revoked.isRevoked)
        XCTAssertEqual(try keys.key(sha256: hash("a"))?.isRevoked, true, "a revoked key is still found, to answer 403")
        let again = try XCTUnwrap(try keys.revoke(alice.id.uuidString))
        XCTAssertEqual(again.revokedAt, revoked.revokedAt, "revoking twice keeps the first time")
        XCTAssertEqual(try keys.revoke(bob.id.uuidString.lowercased())?.name, "bob", "by id, in either case")
        XCTAssertNil(try keys.revoke("carol"))
        XCTAssertTrue(try keys.anyKeys(), "revoked keys still close the open mode")
    }

    func testNamesAreUniqueAndLimitsPositive() throws {
        let keys = try APIKeyStore(url: url)
        _ = try keys.create(name: "alice", sha256: hash("a"))
        XCTAssertThrowsError(try keys.create(name: "alice", sha256: hash("b"))) { error in
            XCTAssertEqual(error as? JobQueueError, .keyNameTaken("alice"))
        }
        for (name, queued, bytes) in [("", nil, nil), ("x", 0, nil), ("y", nil, -5)] as [(String, Int?, Int?)] {
            XCTAssertThrowsError(try keys.create(name: name, sha256: hash("c"), maxQueuedJobs: queued, maxUploadBytesPerDay: bytes)) { error in
                guard case .invalidParameters? = error as? JobQueueError else { return XCTFail("\(name): \(error)") }
            }
        }
        XCTAssertEqual(try keys.list().count, 1, "nothing else was stored")
    }
}
