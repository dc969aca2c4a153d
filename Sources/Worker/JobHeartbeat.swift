// The per-window heartbeat: its own thread and connection, so a busy network can never starve the lease.
import Foundation
import JobQueue
import Logging

/// Extends a claimed window's lease every `interval` seconds of `clock`, reports its iterations, and raises the flags
/// the network's `isCancelled` closure reads: cancellation requested, or the lease lost.
final class JobHeartbeat: @unchecked Sendable {
    private let queue: WorkerQueue
    private let job: ClaimedWindow
    private let leaseSeconds: Double
    private let interval: Double
    private let clock: JobClock
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var finished = false
    private var exited = false
    private var progress = (done: 0, total: nil as Int?)
    private var cancelFlag = false
    private var lostFlag = false
    /// When the next beat is due; set by `start`, so the first beat counts from the claim.
    private var nextBeat = Date.distantFuture

    init(queue: WorkerQueue, job: ClaimedWindow, leaseSeconds: Double, interval: Double, clock: JobClock, logger: Logger) {
        self.queue = queue
        self.job = job
        self.leaseSeconds = leaseSeconds
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    var cancelRequested: Bool { condition.withLock { cancelFlag } }
    var lost: Bool { condition.withLock { lostFlag } }

    func record(iterationsDone: Int, of total: Int) {
        condition.withLock { progress = (iterationsDone, total) }
    }

    func start() {
        condition.withLock { nextBeat = clock.now().addingTimeInterval(interval) }
        let thread = Thread { [self] in loop() }
        thread.name = "heartbeat \(job.jobId)/\(job.index)"
        thread.start()
    }

    /// Stops the thread and waits for it, so the slot's connection is free for the next job.
    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        while !exited { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while !finished {
            if !clock.wait(condition, until: nextBeat) { continue }  // woken early: finished, or a spurious wake
            nextBeat = clock.now().addingTimeInterval(interval)
            let iterations = progress
            condition.unlock()
            let reply: HeartbeatReply?
            do {
                reply = try queue.heartbeat(job, iterationsDone: iterations.done, iterationsTotal: iterations.total, leaseSeconds: leaseSeconds)
            } catch {
                // The next beat reconnects; the lease outlives a few missed beats.
                logger.warning("heartbeat failed", metadata: ["job": "\(job.jobId)", "window": "\(job.index)", "error": "\(error)"])
                reply = nil
            }
            condition.lock()
            switch reply {
            case .held(let cancelRequested)?:
                if cancelRequested && !cancelFlag { logger.info("cancellation requested", metadata: ["job": "\(job.jobId)", "window": "\(job.index)"]) }
                cancelFlag = cancelFlag || cancelRequested
            case .lost?:
                if !lostFlag { logger.warning("lease lost; abandoning the job", metadata: ["job": "\(job.jobId)", "window": "\(job.index)"]) }
                lostFlag = true
            case nil:
                break
            }
        }
        exited = true
        condition.broadcast()
        condition.unlock()
    }
}
