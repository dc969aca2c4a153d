// Test inputs built in code: tiny PNG frames, tars of them, and an in-memory job backend.
import Foundation
import JobQueue
@testable import HTTPServer
#if canImport(Glibc)
import Glibc
#endif

/// Minimal valid PNGs: a signature and an IHDR of the given size (the loader only reads the header; stored
/// chunks after it make each frame's bytes distinct).
func tinyPNG(width: Int, height: Int, seed: UInt8) -> [UInt8] {
    func be32(_ value: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((value >> $0) & 0xFF) } }
    var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    bytes += be32(13) + Array("IHDR".utf8) + be32(width) + be32(height) + [8, 2, 0, 0, 0] + [0, 0, 0, 0]
    bytes += be32(1) + Array("tEXt".utf8) + [seed] + [0, 0, 0, 0]
    bytes += be32(0) + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82]
    return bytes
}

/// A ustar archive of `(name, bytes)` entries, through the server's own writer.
func tar(_ entries: [(String, [UInt8])]) -> [UInt8] {
    entries.flatMap { TarStream.entry(path: $0.0, data: Data($0.1)) } + TarStream.end
}

func frameTar(count: Int, width: Int = 8, height: Int = 6, seed: UInt8 = 0) -> [UInt8] {
    tar((0..<count).map { (String(format: "%04d.png", $0), tinyPNG(width: width, height: height, seed: seed &+ UInt8($0))) })
}

/// Reads a ustar archive back into `(name, bytes)` entries.
func untar(_ bytes: [UInt8]) -> [(String, [UInt8])] {
    var entries: [(String, [UInt8])] = []
    var offset = 0
    while offset + 512 <= bytes.count {
        let header = bytes[offset..<(offset + 512)]
        if header.allSatisfy({ $0 == 0 }) { break }
        let name = String(decoding: header.prefix(100).prefix { $0 != 0 }, as: UTF8.self)
        let size = Int(String(decoding: bytes[(offset + 124)..<(offset + 135)], as: UTF8.self), radix: 8) ?? 0
        entries.append((name, Array(bytes[(offset + 512)..<(offset + 512 + size)])))
        offset += 512 + (size + 511) / 512 * 512
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

    private func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard available else { throw ClientError(description: "storage down") }
        return try body()
    }

    func submit(_ submission: JobSubmission) throws -> (job: JobSnapshot, created: Bool) {
        let frames = try TarFrameLoader().loadFrames(left: submission.left, right: submission.right, limits: submission.frameLimits)
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

    func job(id: UUID) throws -> JobSnapshot? { try locked { jobs[id] } }

    func list(status: JobStatus?, limit: Int, after cursor: String?) throws -> (jobs: [JobSnapshot], next: String?) {
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

    func cancel(id: UUID) throws -> JobSnapshot? {
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

    func delete(id: UUID) throws -> Bool {
        try locked {
            order.removeAll { $0 == id }
            results[id] = nil
            return jobs.removeValue(forKey: id) != nil
        }
    }

    func resultPaths(id: UUID) throws -> [String] { try locked { (results[id] ?? [:]).keys.sorted() } }
    func result(id: UUID, path: String) throws -> Data? { try locked { results[id]?[path] } }

    func statusCounts() throws -> [JobStatus: Int] {
        try locked {
            var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, 0) })
            for job in jobs.values { counts[job.status, default: 0] += 1 }
            return counts
        }
    }

    func recentlySucceeded(limit: Int) throws -> [JobSnapshot] {
        try locked { Array(order.reversed().compactMap { jobs[$0] }.filter { $0.status == .succeeded }.prefix(limit)) }
    }

    func ping() throws { try locked {} }
}
