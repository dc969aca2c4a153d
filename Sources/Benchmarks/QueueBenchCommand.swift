// `dynstereo queue-bench` (hidden): claim throughput of the job queue with empty jobs.
import ArgumentParser
import Dispatch
import Foundation
import JobQueue

/// Measures how fast the queue hands out jobs: enqueues `--jobs` empty jobs (one 1-byte frame each), then
/// `--claimers` threads claim and complete them with the worker's own statements. Needs a scratch database
/// or schema (e.g. a URI with `options=-csearch_path%3Dbench`), which it migrates; it refuses a queue that
/// already has work, and deletes its jobs afterwards.
public struct QueueBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "queue-bench", abstract: "Measures job-queue claim throughput with empty jobs.", shouldDisplay: false)

    @Option(help: "libpq connection string or URI of a scratch database or schema (default: $DATABASE_URL).")
    var database: String?
    @Option(help: "Empty jobs to enqueue.")
    var jobs: Int = 2000
    @Option(help: "Concurrent claiming threads, each with its own connection.")
    var claimers: Int = 4

    public init() {}

    public func run() throws {
        guard jobs >= 1, claimers >= 1 else { throw ValidationError("--jobs and --claimers must be at least 1") }
        let url = try DatabaseURL.resolve(database)
        try Migrator(url: url).run()
        let store = try JobStore(url: url)
        let counts = try store.statusCounts()
        guard counts[.queued, default: 0] + counts[.running, default: 0] == 0 else {
            throw ValidationError("the queue already has queued or running jobs; use a scratch database or schema")
        }
        let frame = [InputFrame(index: 0, name: "0000.png", left: Data([0]), right: Data([0]))]
        let enqueueStart = Date()
        var ids: [UUID] = []
        for _ in 0..<jobs {
            ids.append(try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 2), frames: frame,
                                         idempotencyKey: nil, payloadDigest: nil).job.id)
        }
        let enqueueSeconds = Date().timeIntervalSince(enqueueStart)

        let lock = NSLock()
        var claimed = 0
        var failures: [String] = []
        let claimStart = Date()
        DispatchQueue.concurrentPerform(iterations: claimers) { index in
            let queue = WorkerQueue(url: url)
            do {
                // Each job is one window and its finishing step: two claims.
                while let window = try queue.claim(workerId: "bench/\(index)", leaseSeconds: 60) {
                    let stored: Bool
                    switch window.kind {
                    case .window:
                        let frames = window.window.resultFrames.map { frame in
                            FrameResult(frameIndex: frame, name: "0000", height: 1, width: 1, disparity: Data(count: 4),
                                        disparityPNG: Data([0]), depthPNG: nil, minDisparity: 0, maxDisparity: 0)
                        }
                        stored = try queue.succeed(window, frames: frames)
                    case .finish:
                        stored = try queue.finish(window)
                        lock.withLock { claimed += 1 }
                    case .prepare:
                        // Jobs of frames have no preparing step.
                        throw ValidationError("job \(window.jobId) has a preparing step")
                    }
                    guard stored else { throw ValidationError("lost lease on \(window.jobId)") }
                }
            } catch {
                lock.withLock { failures.append("\(error)") }
            }
        }
        let claimSeconds = Date().timeIntervalSince(claimStart)
        for id in ids { _ = try store.delete(id: id) }
        if let failure = failures.first { throw ValidationError("a claimer failed: \(failure)") }
        guard claimed == jobs else { throw ValidationError("claimed \(claimed) of \(jobs) jobs") }
        print(String(format: "enqueue: %d jobs in %.2f s = %.0f jobs/s (one connection)", jobs, enqueueSeconds, Double(jobs) / enqueueSeconds))
        print(String(format: "claim+complete: %d jobs (a window and a finishing step each) in %.2f s = %.0f jobs/s (%d claimers)", jobs, claimSeconds,
                     Double(jobs) / claimSeconds, claimers))
    }
}
