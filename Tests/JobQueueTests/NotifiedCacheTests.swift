// NotifiedCache on its own: nothing kept or served while not listening, a read overlapping an invalidation
// (of its key, of all, or a lost session) never stored, and the capacity kept with second-chance eviction.
import Foundation
@testable import JobQueue
import XCTest

final class NotifiedCacheTests: XCTestCase {
    private func listeningCache(capacity: Int = 100) -> NotifiedCache<String, Int> {
        let cache = NotifiedCache<String, Int>(capacity: capacity)
        cache.listening()
        return cache
    }

    func testNothingIsKeptBeforeListeningOrAfterALoss() {
        let cache = NotifiedCache<String, Int>(capacity: 100)
        XCTAssertEqual(cache.load("a") { (1, 1) }, 1, "the read's value is answered")
        XCTAssertNil(cache.lookup("a"), "but not kept before listening")
        cache.listening()
        XCTAssertEqual(cache.load("a") { (2, 1) }, 2)
        XCTAssertEqual(cache.lookup("a"), 2)
        cache.lost()
        XCTAssertNil(cache.lookup("a"), "a loss drops everything")
        XCTAssertEqual(cache.load("a") { (3, 1) }, 3)
        XCTAssertNil(cache.lookup("a"), "and keeps nothing until listening again")
        cache.listening()
        XCTAssertNil(cache.lookup("a"), "listening again starts empty")
        let statistics = cache.currentStatistics
        XCTAssertEqual(statistics.bypassed, 2)
        XCTAssertEqual(statistics.misses, 1)
        XCTAssertEqual(statistics.hits, 1)
    }

    func testAnInvalidationDuringAReadKeepsThatReadOut() {
        let cache = listeningCache()
        // The read began before the change was announced: what it read may be the old row.
        XCTAssertEqual(cache.load("a") { () -> (value: Int, cost: Int)? in
            cache.invalidate("a")
            return (1, 1)
        }, 1)
        XCTAssertNil(cache.lookup("a"), "the overlapping read is not stored")
        XCTAssertEqual(cache.currentStatistics.refused, 1)
        // Another key's invalidation does not concern this read.
        _ = cache.load("a") { () -> (value: Int, cost: Int)? in
            cache.invalidate("b")
            return (2, 1)
        }
        XCTAssertEqual(cache.lookup("a"), 2)
        // A read that began after the invalidation is stored.
        cache.invalidate("a")
        XCTAssertNil(cache.lookup("a"))
        _ = cache.load("a") { (3, 1) }
        XCTAssertEqual(cache.lookup("a"), 3)
    }

    func testOfTwoReadsOfOneKeyOnlyTheOneAfterTheInvalidationIsKept() {
        let cache = listeningCache()
        // A begins, the key is invalidated, B begins and ends, then A ends: B's value stays, A's is refused.
        _ = cache.load("a") { () -> (value: Int, cost: Int)? in
            cache.invalidate("a")
            _ = cache.load("a") { (2, 1) }
            XCTAssertEqual(cache.lookup("a"), 2)
            return (1, 1)
        }
        XCTAssertEqual(cache.lookup("a"), 2, "the older read did not overwrite the newer one")
    }

    func testEverythingDroppedDuringAReadKeepsItOut() {
        for drop in ["all", "lost", "listening"] {
            let cache = listeningCache()
            _ = cache.load("kept") { (0, 1) }
            _ = cache.load("a") { () -> (value: Int, cost: Int)? in
                switch drop {
                case "all": cache.invalidateAll()
                case "lost": cache.lost(); cache.listening()
                default: cache.listening()
                }
                return (1, 1)
            }
            XCTAssertNil(cache.lookup("a"), drop)
            XCTAssertNil(cache.lookup("kept"), drop)
        }
    }

    func testAFailedOrEmptyReadStoresNothing() {
        struct Failure: Error {}
        let cache = listeningCache()
        XCTAssertThrowsError(try cache.load("a") { () throws -> (value: Int, cost: Int)? in throw Failure() })
        XCTAssertNil(cache.load("a") { nil })
        XCTAssertNil(cache.lookup("a"))
        // The failed read's record is gone: a later read of the key is stored.
        _ = cache.load("a") { (1, 1) }
        XCTAssertEqual(cache.lookup("a"), 1)
    }

    func testTheCapacityHoldsAndAnEntryUsedSinceItWasStoredGetsASecondChance() {
        let cache = listeningCache(capacity: 3)
        for key in ["a", "b", "c"] { _ = cache.load(key) { (1, 1) } }
        XCTAssertEqual(cache.lookup("a"), 1, "a is used")
        _ = cache.load("d") { (1, 1) }
        XCTAssertEqual(cache.currentStatistics.cost, 3)
        XCTAssertNotNil(cache.lookup("a"), "used since stored: passed over once")
        XCTAssertNil(cache.lookup("b"), "the oldest unused goes")
        XCTAssertNotNil(cache.lookup("c"))
        XCTAssertNotNil(cache.lookup("d"))
        _ = cache.load("big") { (1, 4) }
        XCTAssertNil(cache.lookup("big"), "a value costing more than the capacity is never stored")
        XCTAssertEqual(cache.currentStatistics.entries, 3)
        _ = cache.load("e") { (1, 2) }
        XCTAssertEqual(cache.currentStatistics.cost, 3, "a value costing 2 makes room for itself")
        XCTAssertEqual(cache.lookup("e"), 1)
    }

    func testAHotKeyStoredAgainAndAgainKeepsTheQueueSmall() {
        let cache = listeningCache(capacity: 10)
        for round in 0..<10_000 {
            cache.invalidate("hot")
            _ = cache.load("hot") { (round, 1) }
        }
        XCTAssertEqual(cache.lookup("hot"), 9_999)
        XCTAssertEqual(cache.currentStatistics.entries, 1)
        XCTAssertEqual(cache.currentStatistics.evictions, 0)
        XCTAssertLessThanOrEqual(cache.queueLength, 2 + 64 + 1, "the leftovers of replaced entries are compacted away")
    }
}
