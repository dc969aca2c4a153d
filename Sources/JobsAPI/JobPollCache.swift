// The status poll from memory: `GET /jobs/{id}` answered without PostgreSQL while the job's rows stay as
// they are, which the change notifications of migration 0010 say.
import Foundation
import JobQueue

/// The answers of `GET /jobs/{id}`, by job: the snapshot read and the JSON rendered from it, in a
/// `NotifiedCache` that a `ChangeListener` keeps true (every write to a job's row or windows, by any process,
/// drops the job's answer; a lost LISTEN session drops them all and turns the cache off until it listens
/// again). This server's own writes (cancel, delete, submit) drop theirs before they answer, so a client reads
/// its own writes at once; another process's writes are seen as soon as their notification arrives.
///
/// An answer is kept for the key that asked: the read it came from checked the job's owner in SQL, and a hit
/// needs the same asking key (nil on an open server), so whether a key may see a job is decided exactly as
/// without the cache, and whether workers are shown (`JobView.showsWorkers`) follows the same key. Only
/// jobs found are kept: an unknown id costs a read, never memory.
///
/// Time: a job's JSON changes with the clock alone in one field, `progress.eta_seconds` of a running job (its
/// speed so far times the work left, rounded to whole seconds). An answer therefore keeps the rounded ETA its
/// bytes show, and a hit computes the ETA for now from the job's `JobProgress.Estimate` (a division and a
/// product, the same arithmetic as the view's): the same, the bytes are served; different, they are rendered
/// again from the snapshot (about once per second the ETA moves by). So a hit answers exactly the bytes the
/// uncached path gives at that time. A re-render once a second would be simpler, but would show an ETA up to
/// a second old, and an ETA can move many seconds per second (early in a long job the elapsed time over the
/// work done is large). Nothing else in the job's JSON depends on the time or on the asking key beyond the
/// owner (signed URLs are made by their own route).
public final class JobPollCache: @unchecked Sendable {
    /// One job's answer for one asking key.
    final class Answer {
        let owner: UUID?
        let snapshot: JobSnapshot
        /// Nil when the ETA is null whatever the time: the bytes then never change.
        let estimate: JobProgress.Estimate?
        let cost: Int
        private let lock = NSLock()
        // Guarded by `lock`: the JSON as last rendered, and the rounded ETA it shows.
        private var eta: Double?
        private var body: [UInt8]

        init(owner: UUID?, snapshot: JobSnapshot, estimate: JobProgress.Estimate?, renderedAt now: Date, body: [UInt8]) {
            self.owner = owner
            self.snapshot = snapshot
            self.estimate = estimate
            eta = estimate.map { $0.seconds(at: now).rounded() }
            self.body = body
            // The JSON, and about as much again for the snapshot's windows, names and strings.
            cost = 2 * body.count + 512
        }

        /// The JSON at `now`: as stored while its rounded ETA holds, else rendered again.
        func body(at now: Date, render: (JobSnapshot, Date) throws -> [UInt8]) rethrows -> [UInt8] {
            guard let estimate else { return lock.withLock { body } }
            let current = estimate.seconds(at: now).rounded()
            return try lock.withLock {
                if current != eta {
                    body = try render(snapshot, now)
                    eta = current
                }
                return body
            }
        }
    }

    let answers: NotifiedCache<UUID, Answer>

    /// `capacityBytes`: about the memory the answers may take (a job of 1,000 frames costs some 20 KB).
    public init(capacityBytes: Int = 64 << 20) {
        answers = NotifiedCache(capacity: capacityBytes)
    }

    /// Takes in a change the listener heard.
    public func apply(_ change: StoreChange) {
        switch change {
        case .listening: answers.listening()
        case .lost: answers.lost()
        case let .job(id): answers.invalidate(id)
        case .keys: break
        }
    }

    /// Drops the job's answer: this server is about to write it, or has.
    func drop(_ id: UUID) {
        answers.invalidate(id)
    }

    /// The job's JSON for `owner` at `now`, from memory when it is there, else `read` (the job for that
    /// owner, nil when unknown to it) rendered with `render`, kept if nothing changed meanwhile. Nil when
    /// `read` finds no job.
    func body(id: UUID, owner: UUID?, now: Date, read: () throws -> JobSnapshot?,
              render: (JobSnapshot, Date) throws -> [UInt8]) throws -> [UInt8]? {
        if let answer = answers.lookup(id, where: { $0.owner == owner }) {
            return try answer.body(at: now, render: render)
        }
        var rendered: [UInt8]?
        _ = try answers.load(id) { () -> (value: Answer, cost: Int)? in
            guard let snapshot = try read() else { return nil }
            let body = try render(snapshot, now)
            rendered = body
            let answer = Answer(owner: owner, snapshot: snapshot, estimate: JobView.progress(of: snapshot, now: now)?.estimate,
                                renderedAt: now, body: body)
            return (answer, answer.cost)
        }
        return rendered
    }

    /// What the cache did: the figures of /metrics.
    public var statistics: NotifiedCacheStatistics { answers.currentStatistics }
}
