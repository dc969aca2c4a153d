// Checking a presented key against the stored keys, on the real PostgreSQL: open until the first key,
// then unknown and revoked keys refused, with no HTTP involved.
import APIKeys
import Foundation
import JobQueue
import TestSupport
import XCTest

final class APIKeyVerifierTests: XCTestCase {
    private var schema = ""
    private var store: APIKeyStore!

    override func setUpWithError() throws {
        let url: String
        (url, schema) = try TestDatabase.makeSchema("apikeys_" + name.filter(\.isLetter).suffix(24))
        try Migrator(url: url).run()
        store = try APIKeyStore(url: url)
    }

    override func tearDown() {
        TestDatabase.dropSchema(schema)
    }

    func testOpenUntilTheFirstKeyThenOnlyActiveKeysPass() throws {
        let verifier = APIKeyVerifier(store: store)
        XCTAssertTrue(try verifier.isOpen(), "no key exists yet")
        let secret = APIKeySecret.generate()
        let record = try store.create(name: "alice", sha256: APIKeySecret.sha256Hex(secret))
        XCTAssertFalse(try verifier.isOpen(), "a created key closes the service at once")
        XCTAssertEqual(try verifier.owner(of: secret), record.id)
        XCTAssertThrowsError(try verifier.owner(of: APIKeySecret.generate())) { error in
            XCTAssertEqual(error as? APIKeyRefusal, .unknown)
        }
        _ = try store.revoke("alice")
        XCTAssertThrowsError(try verifier.owner(of: secret)) { error in
            XCTAssertEqual(error as? APIKeyRefusal, .revoked(name: "alice"))
        }
        XCTAssertFalse(try verifier.isOpen(), "a revoked key still keeps the service closed")
    }
}
