// The API server on the real PostgreSQL with its key store: the base of the key and limit tests.
import APIKeys
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import TestSupport
import XCTest
@testable import JobsAPI

/// A migrated schema per test, a job store with the given per-key defaults behind the server, and a helper
/// that creates keys as `dynstereo keys create` does.
class KeyedServerTestCase: ServerTestCase {
    private(set) var databaseURL = ""
    private var schema = ""
    private(set) var keys: APIKeyStore!
    /// The server's limits for keys without their own; a subclass sets them before `setUpWithError`.
    var defaultKeyLimits = KeyLimits.unlimited

    override func setUpWithError() throws {
        (databaseURL, schema) = try TestDatabase.makeSchema("keys_" + name.filter(\.isLetter).suffix(24))
        try Migrator(url: databaseURL).run()
        keys = try APIKeyStore(url: databaseURL)
        try super.setUpWithError()
    }

    override func startServer() throws {
        let store = try JobStore(url: databaseURL, defaultKeyLimits: defaultKeyLimits)
        let backend = JobStoreBackend(store: store, loader: MediaFrameLoader())
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration,
                                      authenticator: BearerAuthenticator(verifier: APIKeyVerifier(store: keys))))
    }

    override func tearDown() {
        super.tearDown()
        TestDatabase.dropSchema(schema)
    }

    /// Creates a key and returns its secret, which only the creator ever sees.
    func makeKey(_ name: String, maxQueuedJobs: Int? = nil, maxUploadBytesPerDay: Int? = nil) throws -> String {
        let secret = APIKeySecret.generate()
        _ = try keys.create(name: name, sha256: APIKeySecret.sha256Hex(secret), maxQueuedJobs: maxQueuedJobs,
                            maxUploadBytesPerDay: maxUploadBytesPerDay)
        return secret
    }
}
