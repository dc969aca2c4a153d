// Answers read from PostgreSQL kept in memory exactly as long as the change notifications of migration 0010
// say nothing changed: the memory behind the API's status poll and its key checks (`ChangeListener` feeds it).
import Foundation

/// What the cache did, for /metrics and tests.
public struct NotifiedCacheStatistics: Equatable, Sendable {
    /// `lookup`s that found a value.
    public var hits = 0
    /// `load`s while listening: reads that ran under a ticket.
    public var misses = 0
    /// `load`s while not listening: reads that could not be kept.
    public var bypassed = 0
    /// Reads not stored because an invalidation came while they ran.
    public var refused = 0
    /// Invalidations received: of one key, or of all.
    public var invalidations = 0
    public var evictions = 0
    /// Stored values and their total cost now.
    public var entries = 0
    public var cost = 0
}

/// Values read from the database, by key, each dropped when a change notification names its key (or all
/// keys), and none kept while notifications cannot be trusted. Thread-safe.
///
/// Three rules keep a value from outliving the rows it was read from:
/// - **Only while listening.** Before `listening()` and after `lost()` nothing is served or stored (the
///   notifications of that time may be lost), and both drop every value.
/// - **No read older than an invalidation.** `load` takes a ticket before its read runs and stores the value
///   only if no invalidation of its key (`invalidate`), of every key (`invalidateAll`, `listening`, `lost`)
///   came in between: a read that began before a change was announced may have seen the old rows. Every
///   invalidation moves a counter on; a ticket holds the counter's value when its read began, and keys with
///   reads in progress remember the counter at their last invalidation, so the check is exact per key and the
///   memory it takes is one small record per read in progress.
/// - **Bounded.** At most `capacity` units of the caller's cost (bytes, say): past it the oldest entries go
///   first, except that an entry used since it was stored or last passed over gets one more round (a
///   second-chance queue, near LRU at O(1) per store).
public final class NotifiedCache<Key: Hashable, Value>: @unchecked Sendable {
    private final class Entry {
        let value: Value
        let cost: Int
        /// Tells this entry from a later one under the same key in the eviction queue.
        let serial: UInt64
        /// Set by a hit, cleared when eviction passes the entry over once.
        var used = false

        init(value: Value, cost: Int, serial: UInt64) {
            self.value = value
            self.cost = cost
            self.serial = serial
        }
    }

    public let capacity: Int
    private let lock = NSLock()
    // Everything below is guarded by `lock`.
    private var entries: [Key: Entry] = [:]
    /// Keys in the order they were stored, from `queueHead` on; a pair whose serial no longer matches the
    /// entry under its key is a leftover, skipped (and compacted away once leftovers outnumber entries).
    private var queue: [(key: Key, serial: UInt64)] = []
    private var queueHead = 0
    private var nextSerial: UInt64 = 0
    private var listeningNow = false
    /// Moves on at every invalidation; a read's ticket is the value when it began.
    private var epoch: UInt64 = 0
    /// Reads that began before this epoch are refused: everything was invalidated at it.
    private var validFrom: UInt64 = 0
    /// Keys with reads in progress: how many, and the epoch of the key's last invalidation while they ran.
    private var reading: [Key: (count: Int, invalidatedAt: UInt64)] = [:]
    private var statistics = NotifiedCacheStatistics()

    /// `capacity`: the most cost the stored values may add up to (a value costing more is never stored).
    public init(capacity: Int) {
        precondition(capacity >= 0, "a capacity is not negative")
        self.capacity = capacity
    }

    /// Whether values are served and stored (between `listening()` and `lost()`).
    public var isListening: Bool { lock.withLock { listeningNow } }

    public var currentStatistics: NotifiedCacheStatistics {
        lock.withLock {
            var copy = statistics
            copy.entries = entries.count
            return copy
        }
    }

    /// Pairs in the eviction queue, leftovers included (the tests check it stays near the entries' count).
    var queueLength: Int { lock.withLock { queue.count - queueHead } }

    /// The stored value for `key` if `matches` accepts it; nil when there is none or the cache is not listening.
    public func lookup(_ key: Key, where matches: (Value) -> Bool = { _ in true }) -> Value? {
        lock.withLock {
            guard listeningNow, let entry = entries[key], matches(entry.value) else { return nil }
            entry.used = true
            statistics.hits += 1
            return entry.value
        }
    }

    /// Runs `read` and returns its value, storing it (with its cost) under the rules above; `read` returning
    /// nil stores nothing (a job that does not exist, say). An error from `read` is rethrown, nothing stored.
    public func load(_ key: Key, _ read: () throws -> (value: Value, cost: Int)?) rethrows -> Value? {
        let ticket: UInt64? = lock.withLock {
            guard listeningNow else {
                statistics.bypassed += 1
                return nil
            }
            statistics.misses += 1
            reading[key, default: (0, 0)].count += 1
            return epoch
        }
        guard let ticket else { return try read()?.value }
        let result: (value: Value, cost: Int)?
        do {
            result = try read()
        } catch {
            finish(key, ticket: ticket, result: nil)
            throw error
        }
        finish(key, ticket: ticket, result: result)
        return result?.value
    }

    private func finish(_ key: Key, ticket: UInt64, result: (value: Value, cost: Int)?) {
        lock.withLock {
            guard let progress = reading[key] else { preconditionFailure("a read finished that never began") }
            if progress.count == 1 { reading[key] = nil } else { reading[key]!.count -= 1 }  // present: read just above
            guard let result else { return }
            guard listeningNow, ticket >= validFrom, progress.invalidatedAt <= ticket else {
                statistics.refused += 1
                return
            }
            store(key, result.value, cost: result.cost)
        }
    }

    /// Called with `lock` held.
    private func store(_ key: Key, _ value: Value, cost: Int) {
        guard cost <= capacity else { return }
        remove(key)
        nextSerial += 1
        entries[key] = Entry(value: value, cost: cost, serial: nextSerial)
        statistics.cost += cost
        queue.append((key, nextSerial))
        while statistics.cost > capacity, queueHead < queue.count {
            let (candidate, serial) = queue[queueHead]
            queueHead += 1
            guard let entry = entries[candidate], entry.serial == serial else { continue }
            // The value being stored stays (it fits): the others, passed over once, go on the next round.
            if entry.used || serial == nextSerial {
                entry.used = false
                queue.append((candidate, serial))
            } else {
                remove(candidate)
                statistics.evictions += 1
            }
        }
        // Leftovers of replaced, invalidated and evicted entries: compacted once they outnumber the live ones.
        if queue.count - queueHead > 2 * entries.count + 64 {
            queue = queue[queueHead...].filter { entries[$0.key]?.serial == $0.serial }
            queueHead = 0
        }
    }

    /// Called with `lock` held.
    private func remove(_ key: Key) {
        if let old = entries.removeValue(forKey: key) { statistics.cost -= old.cost }
    }

    /// Drops `key`'s value, and keeps every read of it in progress from being stored: the rows it was read
    /// from changed (a notification), or are about to be read back by a write of this process's own.
    public func invalidate(_ key: Key) {
        lock.withLock {
            epoch += 1
            statistics.invalidations += 1
            if reading[key] != nil { reading[key]!.invalidatedAt = epoch }  // present: checked in the condition
            remove(key)
        }
    }

    /// Drops every value, and keeps every read in progress from being stored.
    public func invalidateAll() {
        lock.withLock {
            statistics.invalidations += 1
            clear()
        }
    }

    /// The notifications are trusted from now on (the session LISTENs): values are served and stored again,
    /// but none read before, since changes committed while nobody listened were never announced.
    public func listening() {
        lock.withLock {
            listeningNow = true
            clear()
        }
    }

    /// The notifications can no longer be trusted (the session is gone): everything is dropped, and reads
    /// go to the database without being stored until `listening()`.
    public func lost() {
        lock.withLock {
            listeningNow = false
            clear()
        }
    }

    /// Called with `lock` held.
    private func clear() {
        epoch += 1
        validFrom = epoch
        entries.removeAll()
        queue.removeAll()
        queueHead = 0
        statistics.cost = 0
    }
}
