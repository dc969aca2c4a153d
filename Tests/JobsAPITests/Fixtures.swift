// Test inputs built in code: tiny PNG frames, tars of them, and an in-memory job backend.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import Media
@testable import JobsAPI
#if canImport(Glibc)
import Glibc
#endif

/// A small decodable PNG whose pixels depend on `seed`, so every frame's bytes differ.
func tinyPNG(width: Int, height: Int, seed: UInt8) -> [UInt8] {
    let pixels = (0..<(width * height * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed) &* 13) }
    // Encoding a well-formed image cannot fail; a failure is a broken fixture.
    return [UInt8](try! PNG.encodeRGB8(RGBImage(width: width, height: height, pixels: pixels)))
}

/// A ustar archive of `(name, bytes)` entries, written with Media's writer.
func tar(_ entries: [(String, [UInt8])]) -> [UInt8] {
    let writer = TarWriter()
    for (name, bytes) in entries { try! writer.addFile(path: name, contents: Data(bytes)) }
    try! writer.finish()
    return [UInt8](writer.data)
}

func frameTar(count: Int, width: Int = 8, height: Int = 6, seed: UInt8 = 0) -> [UInt8] {
    tar((0..<count).map { (String(format: "%04d.png", $0), tinyPNG(width: width, height: height, seed: seed &+ UInt8($0))) })
}

/// Reads an archive back into `(name, bytes)` entries with Media's reader; empty if it is malformed.
func untar(_ bytes: [UInt8]) -> [(String, [UInt8])] {
    guard let reader = try? TarReader(data: Data(bytes)) else { return [] }
    var entries: [(String, [UInt8])] = []
    while let entry = try? reader.next() {
        guard let data = try? reader.readContents() else { return [] }
        entries.append((entry.path, [UInt8](data)))
    }
    return entries
}

/// Upload temp files currently in `directory`.
func uploadFiles(in directory: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("dynstereo-upload-") }
}

/// A `JobBackend` in memory, validating frames with the same loader as the service.
final class InMemoryJobBackend: JobBackend, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var jobs: [UUID: JobSnapshot] = [:]
    private var order: [UUID] = []
    private var keys: [String: (UUID, String)] = [:]
    var results: [UUID: [String: Data]] = [:]
    var submissions = 0
    var available = true
    static let outage = "connection to server at \"10.9.8.7\", port 6543 failed: Connection refused"

    /// The backend's methods called, in order (`#function` names), since the last `takeCalls()`.
    private var calls: [String] = []

    func takeCalls() -> [String] {
        lock.withLock {
            defer { calls = [] }
            return calls
        }
    }

    private func locked<T>(_ caller: String = #function, _ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        calls.append(caller)
        // What libpq says when the server is away: its host and port, which no client may see.
        guard available else { throw ClientError(description: InMemoryJobBackend.outage) }
        return try body()
    }

    func submit(_ submission: JobSubmission) throws -> (job: JobSnapshot, created: Bool) {
        let frames = try MediaFrameLoader().loadFrames(left: submission.left, right: submission.right, limits: submission.frameLimits)
        // Read every pair as the PostgreSQL backend would, so read errors surface here too.
        for index in 0..<frames.count { _ = try frames.frame(at: index) }
        return try locked {
            submissions += 1
            if let key = submission.idempotencyKey, let (id, digest) = keys[key] {
                guard digest == submission.payloadDigest else {
                    throw JobQueueError.idempotencyConflict(key: key, existing: id)
                }
                return (jobs[id]!, false)
            }
            let job = JobSnapshot(id: UUID(), status: .queued, parameters: submission.parameters, attempt: 0, framesDone: 0,
                                  framesTotal: frames.count, error: nil, createdAt: Date(), startedAt: nil, finishedAt: nil)
            jobs[job.id] = job
            order.append(job.id)
            if let key = submission.idempotencyKey { keys[key] = (job.id, submission.payloadDigest) }
            return (job, true)
        }
    }

    func update(_ id: UUID, _ change: (inout JobSnapshot) -> Void) {
        lock.lock()
        change(&jobs[id]!)
        lock.unlock()
    }

    func job(id: UUID, owner: UUID?) throws -> JobSnapshot? { try locked { jobs[id] } }

    func list(status: JobStatus?, limit: Int, after cursor: String?, owner: UUID?) throws -> (jobs: [JobSnapshot], next: String?) {
        try locked {
            var newest = order.reversed().compactMap { jobs[$0] }.filter { status == nil || $0.status == status }
            if let cursor {
                guard let id = UUID(uuidString: cursor), let index = newest.firstIndex(where: { $0.id == id }) else {
                    throw JobQueueError.invalidCursor(cursor)
                }
                newest = Array(newest[(index + 1)...])
            }
            let page = Array(newest.prefix(limit))
            return (page, newest.count > limit ? page.last!.id.uuidString : nil)
        }
    }

    func cancel(id: UUID, owner: UUID?) throws -> JobSnapshot? {
        try locked {
            guard var job = jobs[id] else { return nil }
            if !job.status.isTerminal {
                job.status = .cancelled
                job.finishedAt = Date()
                jobs[id] = job
            }
            return job
        }
    }

    func delete(id: UUID, owner: UUID?) throws -> Bool {
        try locked {
            order.removeAll { $0 == id }
            results[id] = nil
            return jobs.removeValue(forKey: id) != nil
        }
    }

    func resultPaths(id: UUID) throws -> [String] { try locked { (results[id] ?? [:]).keys.sorted() } }
    func result(id: UUID, path: String) throws -> Data? { try locked { results[id]?[path] } }

    /// No keys here: the limits are tested against PostgreSQL.
    func usage(owner: UUID) throws -> KeyUsage? { try locked { nil } }

    func statusCounts() throws -> [JobStatus: Int] {
        try locked {
            var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, 0) })
            for job in jobs.values { counts[job.status, default: 0] += 1 }
            return counts
        }
    }

    /// Counted from the jobs held (PostgreSQL counts at each transition; CounterTests and MetricsTests test
    /// that), with migration 0005's bucket bounds.
    func jobCounters() throws -> JobCounters {
        try locked {
            let finished = Dictionary(uniqueKeysWithValues: JobStatus.terminal.map { status in
                (status, jobs.values.filter { $0.status == status }.count)
            })
            let timed = jobs.values.compactMap { job -> (seconds: Double, frames: Int)? in
                guard job.status == .succeeded, let started = job.startedAt, let ended = job.finishedAt else { return nil }
                return (max(0, ended.timeIntervalSince(started)), job.framesTotal)
            }
            let buckets = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, Double.infinity].map { bound in
                JobCounters.Bucket(upperBound: bound, cumulativeCount: timed.filter { $0.seconds <= bound }.count)
            }
            return JobCounters(finished: finished, durationBuckets: buckets, durationSum: timed.reduce(0) { $0 + $1.seconds },
                               framesSucceeded: timed.reduce(0) { $0 + $1.frames })
        }
    }

    func ping() throws { try locked {} }
}
