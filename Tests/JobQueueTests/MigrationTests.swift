// The migrations: the embedded texts are the files, in order; they apply once, and serialise under concurrency.
import Foundation
@testable import JobQueue
import TestSupport
import XCTest

final class MigrationFileTests: XCTestCase {
    /// The EmbedMigrations plugin compiles migrations/*.sql into the module: every file is there, byte for
    /// byte, in version order, and nothing else is.
    func testEveryMigrationFileIsEmbeddedByteForByteInVersionOrder() throws {
        let folder = SharedData.projectRoot.appendingPathComponent("migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        XCTAssertFalse(files.isEmpty)
        XCTAssertEqual(files.count, Migrations.all.count, "every migrations/*.sql file must be embedded, and nothing else")
        XCTAssertEqual(embeddedTexts.map(\.path), files.map { "migrations/" + $0 })
        for (index, (file, migration)) in zip(files, Migrations.all).enumerated() {
            XCTAssertEqual(file, String(format: "%04d_%@.sql", migration.version, migration.name))
            XCTAssertEqual(migration.version, index + 1, "versions are numbered from 1 without gaps")
            let onDisk = try Data(contentsOf: folder.appendingPathComponent(file))
            XCTAssertEqual(Data(migration.sql.utf8), onDisk,
                           "the embedded \(file) is stale: SwiftPM did not re-run the plugin (touch Package.swift and rebuild)")
        }
    }

    func testAFileNameGivesTheVersionAndName() {
        let migration = Migration(path: "migrations/0012_add_index_2.sql", sql: "SELECT 1;\n")
        XCTAssertEqual(migration.version, 12)
        XCTAssertEqual(migration.name, "add_index_2")
        XCTAssertEqual(migration.sql, "SELECT 1;\n")
    }
}

final class MigratorTests: XCTestCase {
    var url = ""
    var schema = ""

    override func setUpWithError() throws {
        (url, schema) = try TestDatabase.makeSchema("migrator")
    }

    override func tearDown() {
        TestDatabase.dropSchema(schema)
    }

    func testSecondRunIsANoOp() throws {
        XCTAssertEqual(try Migrator(url: url).run(), Migrations.all.map(\.version))
        XCTAssertEqual(try Migrator(url: url).run(), [])
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM schema_migrations"), "\(Migrations.all.count)")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM jobs"), "0")
    }

    func testConcurrentRunsApplyEachMigrationOnce() throws {
        let results = LockedArray<Result<[Int], Error>>()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            results.append(Result { try Migrator(url: url).run() })
        }
        let applied = try results.values.map { try $0.get() }
        XCTAssertEqual(applied.filter { !$0.isEmpty }, [Migrations.all.map(\.version)], "exactly one run applies")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM schema_migrations"), "\(Migrations.all.count)")
    }

    func testAFailingMigrationRollsBackAndNamesItself() throws {
        let broken = Migrations.all + [Migration(version: Migrations.all.count + 1, name: "broken",
                                                 sql: "CREATE TABLE half_done (x int);\nSELECT no_such_column FROM jobs;\n")]
        XCTAssertThrowsError(try Migrator(url: url, migrations: broken).run()) { error in
            guard case let JobQueueError.migrationFailed(version, name, message)? = error as? JobQueueError else {
                return XCTFail("expected migrationFailed, got \(error)")
            }
            XCTAssertEqual(version, Migrations.all.count + 1)
            XCTAssertEqual(name, "broken")
            XCTAssertTrue(message.contains("no_such_column"), message)
        }
        // The good migrations stay applied; the broken one left nothing behind.
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*) FROM schema_migrations"), "\(Migrations.all.count)")
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT to_regclass('half_done') IS NULL"), "t")
    }

    func testADatabaseNewerThanTheBinaryIsRefused() throws {
        try Migrator(url: url).run()
        try TestDatabase.psql(url, "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
        XCTAssertThrowsError(try Migrator(url: url).run()) { error in
            XCTAssertEqual(error as? JobQueueError, .unknownMigrations([999]))
        }
    }

    func testUnreachableServerIsAConnectionError() {
        XCTAssertThrowsError(try Migrator(url: "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2").run()) { error in
            XCTAssertTrue((error as? PostgresError)?.isConnectionLoss ?? false, "\(error)")
        }
    }

    func testDatabaseURLFallsBackToTheEnvironment() throws {
        XCTAssertEqual(try DatabaseURL.resolve("a", environment: ["DATABASE_URL": "b"]), "a")
        XCTAssertEqual(try DatabaseURL.resolve(nil, environment: ["DATABASE_URL": "b"]), "b")
        XCTAssertThrowsError(try DatabaseURL.resolve(nil, environment: [:])) { XCTAssertEqual($0 as? JobQueueError, .noDatabaseURL) }
    }
}

/// An array several threads append to.
final class LockedArray<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element] = []
    func append(_ element: Element) { lock.withLock { storage.append(element) } }
    var values: [Element] { lock.withLock { storage } }
}
