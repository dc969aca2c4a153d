// The API server on the real PostgreSQL job store: the base of the tests that need rows, not the in-memory backend.
import Foundation
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

/// A migrated schema of this test's own and a job store on it behind the server, dropped after the test. A
/// subclass names its schema and may serve another store or frame loader by overriding `startServer`.
class StoreServerTestCase: ServerTestCase {
    private(set) var databaseURL = ""
    private(set) var schema = ""

    /// The start of this test's schema name (the test's own name follows), so that a schema left behind by a
    /// crashed run says which tests made it.
    var schemaPrefix: String { "store_" }

    override func setUpWithError() throws {
        (databaseURL, schema) = try TestDatabase.makeSchema(schemaPrefix + name.filter(\.isLetter).suffix(24))
        try Migrator(url: databaseURL).run()
        try super.setUpWithError()
    }

    override func startServer() throws {
        let backend = JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader())
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration))
    }

    override func tearDown() {
        super.tearDown()
        TestDatabase.dropSchema(schema)
    }

    /// The number of rows in `table` of this test's schema, -1 if psql's answer is not a number.
    func count(_ table: String) throws -> Int {
        Int(try TestDatabase.psql(TestDatabase.serverURL, "SELECT count(*) FROM \(schema).\(table)")) ?? -1
    }
}
