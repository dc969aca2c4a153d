// The headless worker: job slots that claim and run jobs, plus a listener that wakes them, reaps leases and
// applies retention.
import Foundation
import JobQueue
import Logging

/// Runs jobs from the PostgreSQL queue until stopped.
///
/// Threads: one per slot (claims a job, runs the processor, writes the outcome), one heartbeat per running
/// job (`JobHeartbeat`), and one listener (LISTEN for new jobs, poll fallback, lease reaper, retention of
/// finished jobs' data). Each has its
/// own database session; any of them that loses the database reconnects with backoff on its own, and a
/// slot never claims a second job while it holds one.
public final class QueueWorker: @unchecked Sendable {
    /// The longest stretch the listener spends on retention before it looks at its other duties again.
    static let retentionRoundSeconds: Double = 5

    private let url: String
    private let processors: [JobProcessor]
    private let configuration: WorkerConfiguration
    private let logger: Logger
    /// Wakes idle slots (new job notified, poll, stop) and guards `stopping`.
    private let wake = NSCondition()
    private var stopping = false
    private var wakeups = 0

    /// One processor per slot (`configuration.concurrency` of them), since a processor may keep state
    /// (the loaded network) that is not safe to share between threads.
    public init(url: String, processors: [JobProcessor], configuration: WorkerConfiguration, logger: Logger) throws {
        try configuration.validate()
        precondition(processors.count == configuration.concurrency, "one processor per slot")
        self.url = url
        self.processors = processors
        self.configuration = configuration
        self.logger = logger
    }

    /// Stop claiming; jobs in progress finish or are handed back (`configuration.onStop`). Thread-safe,
    /// callable from a signal handler's queue.
    public func stop() {
        wake.withLock {
            if !stopping { logger.info("stopping: no new claims", metadata: ["onStop": "\(configuration.onStop.rawValue)"]) }
            stopping = true
            wake.broadcast()
        }
    }

    private var isStopping: Bool { wake.withLock { stopping } }

    /// Runs until `stop()` and every slot is idle.
    public func run() {
        logger.info("worker started", metadata: ["worker": "\(configuration.workerId)", "slots": "\(configuration.concurrency)"])
        let group = DispatchGroup()
        var threads: [Thread] = []
        for slot in 0..<configuration.concurrency {
            group.enter()
            threads.append(Thread { [self] in
                runSlot(slot)
                group.leave()
            })
        }
        group.enter()
        threads.append(Thread { [self] in
            runListener()
            group.leave()
        })
        for thread in threads { thread.start() }
        group.wait()
        logger.info("worker stopped", metadata: ["worker": "\(configuration.workerId)"])
    }

    // MARK: Listener and reaper

    private func runListener() {
        let queue = WorkerQueue(url: url)
        var listening = false
        var delay = configuration.reconnectMin
        var nextReap = Date()
        var nextRetention = Date()
        var nextPoll = Date(timeIntervalSinceNow: configuration.pollInterval)
        while !isStopping {
            do {
                if !listening {
                    try queue.listen()
                    listening = true
                    delay = configuration.reconnectMin
                    notifySlots()  // jobs may have arrived while we were not listening
                }
                if Date() >= nextReap {
                    nextReap = Date(timeIntervalSinceNow: configuration.reapInterval)
                    for (id, status) in try queue.expireLeases(backoff: configuration.backoff) {
                        logger.warning("lease expired; worker presumed dead", metadata: ["job": "\(id)", "now": "\(status.rawValue)"])
                    }
                }
                if let retention = configuration.resultRetention, Date() >= nextRetention {
                    nextRetention = Date(timeIntervalSinceNow: configuration.retentionInterval)
                    // This thread also wakes the slots and reaps leases: a large backlog (the first run after
                    // an upgrade) is worked off in rounds of a few seconds, with those duties in between.
                    let roundEnd = Date(timeIntervalSinceNow: Self.retentionRoundSeconds)
                    let expired = try queue.expireResults(olderThan: retention, batchSize: configuration.retentionBatchSize,
                                                          shouldStop: { isStopping || Date() >= roundEnd })
                    if Date() >= roundEnd { nextRetention = Date() }
                    if !expired.isEmpty {
                        logger.info("retention deleted the inputs and results of finished jobs",
                                    metadata: ["jobs": "\(expired.count)", "olderThanSeconds": "\(retention)"])
                    }
                }
                // Short waits so a stop is noticed within a second.
                if try queue.waitForJobs(timeout: 1) || Date() >= nextPoll {
                    nextPoll = Date(timeIntervalSinceNow: configuration.pollInterval)
                    notifySlots()
                }
            } catch {
                listening = false
                logger.warning("listener lost the database; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                sleep(delay)
                delay = min(configuration.reconnectMax, delay * 2)
                notifySlots()  // slots poll while the listener is down
            }
        }
    }

    private func notifySlots() {
        wake.withLock {
            wakeups += 1
            wake.broadcast()
        }
    }

    /// Sleeps up to `seconds`, waking early on stop.
    private func sleep(_ seconds: Double) {
        wake.withLock { if !stopping { _ = wake.wait(until: Date(timeIntervalSinceNow: seconds)) } }
    }

    // MARK: Slots

    private func runSlot(_ slot: Int) {
        let workerId = "\(configuration.workerId)/\(slot)"
        let queue = WorkerQueue(url: url)
        let heartbeatQueue = WorkerQueue(url: url)
        var delay = configuration.reconnectMin
        while true {
            let seen = wake.withLock { wakeups }
            if isStopping { return }
            let job: ClaimedJob?
            do {
                job = try queue.claim(workerId: workerId, leaseSeconds: configuration.leaseSeconds)
                delay = configuration.reconnectMin
            } catch {
                logger.warning("claim failed; retrying", metadata: ["slot": "\(slot)", "error": "\(error)", "delay": "\(delay)"])
                sleep(delay)
                delay = min(configuration.reconnectMax, delay * 2)
                continue
            }
            guard let job else {
                // Idle until notified, polled or stopped (a wake-up since `seen` means look again now).
                wake.withLock {
                    if !stopping && wakeups == seen {
                        _ = wake.wait(until: Date(timeIntervalSinceNow: configuration.pollInterval))
                    }
                }
                continue
            }
            runJob(job, slot: slot, queue: queue, heartbeatQueue: heartbeatQueue)
        }
    }

    private func runJob(_ job: ClaimedJob, slot: Int, queue: WorkerQueue, heartbeatQueue: WorkerQueue) {
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        logger.info("claimed job", metadata: ["frames": "\(job.record.framesTotal)", "lease": "\(job.lease)"])
        let heartbeat = JobHeartbeat(queue: heartbeatQueue, job: job, leaseSeconds: configuration.leaseSeconds,
                                     interval: configuration.heartbeatInterval, logger: logger)
        heartbeat.start()
        defer { heartbeat.finish() }
        let handBackOnStop = configuration.onStop == .handBack
        let isCancelled = { [self] in heartbeat.cancelRequested || heartbeat.lost || (handBackOnStop && isStopping) }

        let started = Date()
        let outcome: Result<[ResultBlob], Error>
        do {
            let frames = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.inputs(of: job) }
            outcome = Result {
                try processors[slot].process(frames: frames, parameters: job.parameters,
                                             progress: { done, _ in heartbeat.record(framesDone: done) },
                                             isCancelled: isCancelled)
            }
        } catch {
            // Only an abandoned job (lease lost while the database was away) gets here.
            logger.warning("gave up reading the job's inputs", metadata: ["error": "\(error)"])
            return
        }
        let seconds = String(format: "%.2f", Date().timeIntervalSince(started))

        do {
            switch outcome {
            case let .success(results):
                let stored = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.succeed(job, results: results) }
                if stored {
                    logger.info("job succeeded", metadata: ["seconds": "\(seconds)", "files": "\(results.count)"])
                } else {
                    logger.warning("lease lost before the results were stored; they were discarded")
                }
            case let .failure(error) where heartbeat.lost:
                logger.warning("job abandoned after losing its lease", metadata: ["error": "\(error)"])
            case .failure(let error as PermanentJobError):
                _ = try persist(logger, abandonIf: { heartbeat.lost }) {
                    try queue.fail(job, error: JobErrorInfo(code: error.code, message: error.description))
                }
                logger.error("job failed: bad input, not retried", metadata: ["error": "\(error)"])
            case .failure(let error) where isCancelled():
                if heartbeat.cancelRequested {
                    _ = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.markCancelled(job) }
                    logger.info("job cancelled", metadata: ["seconds": "\(seconds)"])
                } else {
                    let status = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.handBack(job) }
                    logger.info("job handed back on shutdown", metadata: ["now": "\(status?.rawValue ?? "lost")", "stopped": "\(error)"])
                }
            case let .failure(error):
                let status = try persist(logger, abandonIf: { heartbeat.lost }) {
                    try queue.retry(job, error: JobErrorInfo(code: "processing_failed", message: "\(error)"), backoff: configuration.backoff)
                }
                logger.error("job attempt failed", metadata: ["error": "\(error)", "now": "\(status?.rawValue ?? "lost")"])
            }
        } catch {
            logger.warning("could not record the job's outcome; its lease will expire and it will be retried",
                           metadata: ["error": "\(error)"])
        }
    }

    /// Runs a database step, retrying with backoff while the database is unreachable, until it succeeds or
    /// the lease is lost (then the job is someone else's and the step is moot).
    private func persist<R>(_ logger: Logger, abandonIf lost: () -> Bool, _ step: () throws -> R) throws -> R {
        var delay = configuration.reconnectMin
        while true {
            do {
                return try step()
            } catch let error as PostgresError where error.isConnectionLoss {
                if lost() { throw error }
                logger.warning("database unreachable; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                Thread.sleep(forTimeInterval: delay)
                delay = min(configuration.reconnectMax, delay * 2)
            }
        }
    }
}
