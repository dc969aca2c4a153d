// A test case with its own migrated schema in the test PostgreSQL.
import Foundation
import JobQueue
import TestSupport
import XCTest

class QueueTestCase: XCTestCase {
    var url = ""
    var schema = ""

    override func setUpWithError() throws {
        (url, schema) = try TestDatabase.makeSchema(String(describing: type(of: self)) + "_" + name.filter(\.isLetter).suffix(20))
        try Migrator(url: url).run()
    }

    override func tearDown() {
        TestDatabase.dropSchema(schema)
    }

    /// A tiny valid-looking frame: the queue stores bytes and never decodes them.
    func frames(_ count: Int, size: Int = 16) -> [InputFrame] {
        (0..<count).map { index in
            InputFrame(index: index, name: String(format: "%04d.png", index),
                       left: Data((0..<size).map { UInt8(($0 + index) & 0xFF) }),
                       right: Data((0..<size).map { UInt8(($0 * 3 + index) & 0xFF) }))
        }
    }

    func enqueue(_ store: JobStore, frames count: Int = 2, key: String? = nil, digest: String? = nil) throws -> JobRecord {
        try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(count),
                          idempotencyKey: key, payloadDigest: digest).job
    }
}
