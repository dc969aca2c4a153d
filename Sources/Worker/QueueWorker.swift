// The headless worker: job slots that claim and run jobs, and three services that wake them, reap leases and
// apply retention.
import Foundation
import JobQueue
import Logging

/// Runs jobs from the PostgreSQL queue until stopped.
///
/// Threads: one per slot (claims a job, runs the processor, writes the outcome), one heartbeat per running
/// job (`JobHeartbeat`), and the `WorkerService`s, each on threads of its own with its own interval:
/// wake-ups (a LISTEN session for the queue's notifications, and a poll timer), the lease reaper, and retention
/// of finished jobs' data. Each that talks to the database has its own session; any of them that loses the
/// database reconnects with backoff on its own, and a slot never claims a second job while it holds one.
///
/// Every timer runs on `clock` and every statement at its time, so a test with a `ManualClock` decides when
/// heartbeats beat, polls fire, leases expire and retention passes run; `events` says what happened.
public final class QueueWorker: @unchecked Sendable {
    private let url: String
    private let processors: [JobProcessor]
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let clock: JobClock
    private let events: (@Sendable (WorkerEvent) -> Void)?
    /// Wakes idle slots (new job notified, poll, stop), wakes services waiting for their next pass (stop),
    /// and guards `stopping` and `wakeups`.
    private let wake = NSCondition()
    private var stopping = false
    private var wakeups = 0
    /// Raised by `stop()`, so that the LISTEN session's wait on its socket ends at once.
    private let stopSignal: StopSignal

    /// One processor per slot (`configuration.concurrency` of them), since a processor may keep state
    /// (the loaded network) that is not safe to share between threads.
    public init(url: String, processors: [JobProcessor], configuration: WorkerConfiguration, logger: Logger,
                clock: JobClock = SystemClock.shared, events: (@Sendable (WorkerEvent) -> Void)? = nil) throws {
        try configuration.validate()
        precondition(processors.count == configuration.concurrency, "one processor per slot")
        self.url = url
        self.processors = processors
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        self.events = events
        do {
            stopSignal = try StopSignal()
        } catch {
            throw WorkerError.outOfResources("\(error)")
        }
    }

    /// Stop claiming; jobs in progress finish or are handed back (`configuration.onStop`). Thread-safe,
    /// callable from a signal handler's queue.
    public func stop() {
        wake.withLock {
            if !stopping { logger.info("stopping: no new claims", metadata: ["onStop": "\(configuration.onStop.rawValue)"]) }
            stopping = true
            wake.broadcast()
        }
        stopSignal.raise()
    }

    private var isStopping: Bool { wake.withLock { stopping } }

    /// Runs until `stop()` and every slot is idle.
    public func run() {
        logger.info("worker started", metadata: ["worker": "\(configuration.workerId)", "slots": "\(configuration.concurrency)"])
        // Each timer's first deadline is fixed here, before any thread runs, so that it counts from the start
        // whenever its thread gets the processor.
        let start = clock.now()
        var duties: [() -> Void] = (0..<configuration.concurrency).map { slot in { [self] in runSlot(slot) } }
        duties.append { [self] in runNotifications() }
        duties.append { [self] in
            runPeriodic(.wakeups, every: configuration.pollInterval, firstAt: start.addingTimeInterval(configuration.pollInterval)) { _ in
                notifySlots()
                return 0
            }
        }
        duties.append { [self] in
            runPeriodic(.leaseReaper, every: configuration.reapInterval, firstAt: start) { queue in
                let expired = try queue.expireLeases(backoff: configuration.backoff)
                for (id, window, status) in expired {
                    logger.warning("lease expired; worker presumed dead", metadata: ["job": "\(id)", "window": "\(window)", "now": "\(status.rawValue)"])
                }
                return expired.count
            }
        }
        if let retention = configuration.resultRetention {
            duties.append { [self] in
                runPeriodic(.retention, every: configuration.retentionInterval, firstAt: start) { queue in
                    let expired = try queue.expireResults(olderThan: retention, batchSize: configuration.retentionBatchSize,
                                                          shouldStop: { isStopping })
                    if !expired.isEmpty {
                        logger.info("retention deleted the inputs and results of finished jobs",
                                    metadata: ["jobs": "\(expired.count)", "olderThanSeconds": "\(retention)"])
                    }
                    return expired.count
                }
            }
        }
        let group = DispatchGroup()
        let threads = duties.map { duty in
            group.enter()
            return Thread {
                duty()
                group.leave()
            }
        }
        for thread in threads { thread.start() }
        group.wait()
        logger.info("worker stopped", metadata: ["worker": "\(configuration.workerId)"])
    }

    // MARK: Services

    /// The notification half of `WorkerService.wakeups`: a LISTEN session that wakes the slots on every
    /// notification (an enqueue, a stored window, a retry, a re-queue, a hand-back), resubscribing after a lost
    /// session. Its waits on the socket end at a stop (through `stopSignal`), and are bounded in real time only
    /// as a backstop; the service's poll half runs on the clock.
    private func runNotifications() {
        let queue = WorkerQueue(url: url, clock: clock)
        var listening = false
        var delay = configuration.reconnectMin
        while !isStopping {
            do {
                if !listening {
                    try queue.listen()
                    listening = true
                    delay = configuration.reconnectMin
                    // Jobs may have arrived while we were not listening. The event goes out with the wake-up,
                    // under its lock: a slot seen idle after it has seen this wake-up.
                    notifySlots(reporting: .listening)
                }
                if try queue.waitForJobs(timeout: 1, interrupt: stopSignal.descriptor) { notifySlots() }
            } catch {
                listening = false
                logger.warning("listener lost the database; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                // The backoff's end is fixed before the event goes out, so a clock moved on by whoever saw
                // the event always reaches it (the same order below).
                let retryAt = clock.now().addingTimeInterval(delay)
                emit(.databaseUnreachable(WorkerService.wakeups.rawValue))
                _ = waitUntil(retryAt)
                delay = min(configuration.reconnectMax, delay * 2)
            }
        }
    }

    /// Runs `pass` at `firstAt` and then `interval` after the start of each pass, on the clock, until the
    /// worker stops. Counting from the start means a clock that moved on during a pass is caught up at once by
    /// a pass that reads the new time, rather than one interval after it. A pass that fails (the database unreachable) is tried again after the reconnection
    /// backoff. `pass` returns how many jobs it changed, which the `servicePass` event reports.
    /// The session connects at its first statement, so a pass that needs no database opens none.
    private func runPeriodic(_ service: WorkerService, every interval: Double, firstAt: Date,
                             _ pass: (WorkerQueue) throws -> Int) {
        let queue = WorkerQueue(url: url, clock: clock)
        var next = firstAt
        var delay = configuration.reconnectMin
        while waitUntil(next) {
            let started = clock.now()
            do {
                let changed = try pass(queue)
                delay = configuration.reconnectMin
                next = started.addingTimeInterval(interval)
                emit(.servicePass(service, changed: changed))
            } catch {
                logger.warning("\(service.rawValue) failed; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                next = clock.now().addingTimeInterval(delay)
                emit(.databaseUnreachable(service.rawValue))
                delay = min(configuration.reconnectMax, delay * 2)
            }
        }
    }

    /// Waits on the clock until `deadline`, waking early on stop; false when the worker is stopping.
    private func waitUntil(_ deadline: Date) -> Bool {
        wake.withLock {
            while !stopping && clock.now() < deadline { clock.wait(wake, until: deadline) }
            return !stopping
        }
    }

    private func notifySlots(reporting event: WorkerEvent? = nil) {
        wake.withLock {
            wakeups += 1
            wake.broadcast()
            if let event { emit(event) }
        }
    }

    private func emit(_ event: WorkerEvent) {
        events?(event)
    }

    // MARK: Slots

    private func runSlot(_ slot: Int) {
        let workerId = "\(configuration.workerId)/\(slot)"
        let queue = WorkerQueue(url: url, clock: clock)
        let heartbeatQueue = WorkerQueue(url: url, clock: clock)
        var delay = configuration.reconnectMin
        // Claims in a row that found nothing while a window was claimable: another worker's claim held it.
        var missed = 0
        while true {
            let seen = wake.withLock { wakeups }
            if isStopping { return }
            let job: ClaimedWindow?
            // When the earliest backoff among queued windows ends, on the clock: an idle slot waits no longer.
            var backoffEnds: Date?
            do {
                // Jobs queued before windows existed get theirs first (a cheap indexed look when there is none).
                try queue.planPendingJobs()
                job = try queue.claim(workerId: workerId, leaseSeconds: configuration.leaseSeconds)
                if job == nil {
                    // Read before the statement, so the deadline is never later than the backoff's end.
                    let asked = clock.now()
                    backoffEnds = try queue.secondsUntilClaimable().map { asked.addingTimeInterval(max(0, $0)) }
                }
                delay = configuration.reconnectMin
            } catch {
                logger.warning("claim failed; retrying", metadata: ["slot": "\(slot)", "error": "\(error)", "delay": "\(delay)"])
                let retryAt = clock.now().addingTimeInterval(delay)
                emit(.databaseUnreachable("slot \(slot)"))
                _ = waitUntil(retryAt)
                delay = min(configuration.reconnectMax, delay * 2)
                continue
            }
            guard let job else {
                if let ends = backoffEnds, ends <= clock.now() {
                    // Claimable now, yet another claimer held it: look once more, then wait as usual.
                    missed += 1
                    if missed <= 1 { continue }
                    backoffEnds = nil
                } else {
                    missed = 0
                }
                // Idle until notified, polled, stopped or the earliest backoff ends; a wake-up since `seen`
                // means look again now. The event is sent under the lock, so a watcher that sees it knows the
                // slot is really waiting.
                wake.withLock {
                    guard !stopping && wakeups == seen else { return }
                    emit(.slotIdle(slot: slot))
                    while !stopping && wakeups == seen {
                        if let ends = backoffEnds {
                            if clock.wait(wake, until: ends) { return }
                        } else {
                            wake.wait()
                        }
                    }
                }
                continue
            }
            missed = 0
            runWindow(job, slot: slot, queue: queue, heartbeatQueue: heartbeatQueue)
            emit(.windowEnded(slot: slot, job: job.jobId, window: job.index, kind: job.kind))
        }
    }

    private func runWindow(_ job: ClaimedWindow, slot: Int, queue: WorkerQueue, heartbeatQueue: WorkerQueue) {
        var logger = self.logger
        logger[metadataKey: "job"] = "\(job.jobId)"
        logger[metadataKey: "window"] = "\(job.index)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        logger.info("claimed \(job.kind == .finish ? "finishing step" : job.kind == .prepare ? "preparing step" : "window")",
                    metadata: ["frames": "\(job.window.inputFrames)", "lease": "\(job.lease)"])
        let heartbeat = JobHeartbeat(queue: heartbeatQueue, job: job, leaseSeconds: configuration.leaseSeconds,
                                     interval: configuration.heartbeatInterval, clock: clock, logger: logger)
        heartbeat.start()
        defer { heartbeat.finish() }
        let handBackOnStop = configuration.onStop == .handBack
        let isCancelled = { [self] in heartbeat.cancelRequested || heartbeat.lost || (handBackOnStop && isStopping) }

        let started = clock.now()
        let outcome: Result<Bool, Error>
        switch job.kind {
        case .window:
            let frames: [InputFrame]
            do {
                frames = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.inputs(of: job) }
            } catch {
                // Only an abandoned window (lease lost while the database was away) gets here.
                logger.warning("gave up reading the window's inputs", metadata: ["error": "\(error)"])
                return
            }
            outcome = Result {
                let results = try processors[slot].process(window: job, frames: frames,
                                                           progress: { done, total in heartbeat.record(iterationsDone: done, of: total) },
                                                           isCancelled: isCancelled)
                return try persist(logger, abandonIf: { heartbeat.lost }) { try queue.succeed(job, frames: results) }
            }
        case .prepare:
            outcome = Result {
                try PreparingStep.run(job, queue: queue, persist: { step in try persist(logger, abandonIf: { heartbeat.lost }, step) },
                                      progress: { done, total in heartbeat.record(iterationsDone: done, of: total) },
                                      isCancelled: isCancelled)
            }
        case .finish:
            outcome = Result {
                try FinishingStep.run(job, queue: queue, persist: { step in try persist(logger, abandonIf: { heartbeat.lost }, step) },
                                      progress: { done, total in heartbeat.record(iterationsDone: done, of: total) },
                                      isCancelled: isCancelled)
            }
        }
        let seconds = String(format: "%.2f", clock.now().timeIntervalSince(started))

        do {
            switch outcome {
            case let .success(stored):
                if stored {
                    logger.info("\(job.kind == .finish ? "job succeeded" : job.kind == .prepare ? "frames decoded" : "window stored")",
                                metadata: ["seconds": "\(seconds)"])
                } else {
                    logger.warning("lease lost before the results were stored; they were discarded")
                }
            case let .failure(error) where heartbeat.lost:
                logger.warning("window abandoned after losing its lease", metadata: ["error": "\(error)"])
            case .failure(let error as PermanentJobError):
                _ = try persist(logger, abandonIf: { heartbeat.lost }) {
                    try queue.fail(job, error: JobErrorInfo(code: error.code, message: error.description))
                }
                logger.error("job failed: bad input, not retried", metadata: ["error": "\(error)"])
            case .failure(let error) where isCancelled():
                if heartbeat.cancelRequested {
                    _ = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.markCancelled(job) }
                    logger.info("window cancelled", metadata: ["seconds": "\(seconds)"])
                } else {
                    let status = try persist(logger, abandonIf: { heartbeat.lost }) { try queue.handBack(job) }
                    logger.info("window handed back on shutdown", metadata: ["now": "\(status?.rawValue ?? "lost")", "stopped": "\(error)"])
                }
            case let .failure(error):
                let status = try persist(logger, abandonIf: { heartbeat.lost }) {
                    try queue.retry(job, error: JobErrorInfo(code: "processing_failed", message: "\(error)"), backoff: configuration.backoff)
                }
                logger.error("window attempt failed", metadata: ["error": "\(error)", "now": "\(status?.rawValue ?? "lost")"])
            }
        } catch {
            logger.warning("could not record the window's outcome; its lease will expire and it will be retried",
                           metadata: ["error": "\(error)"])
        }
    }

    /// Runs a database step, retrying with backoff while the database is unreachable, until it succeeds or
    /// the lease is lost (then the job is someone else's and the step is moot). A stop does not end it: the
    /// outcome is worth recording. Every step is safe to run again after a session lost at its COMMIT (see
    /// `WorkerQueue`).
    private func persist<R>(_ logger: Logger, abandonIf lost: () -> Bool, _ step: () throws -> R) throws -> R {
        var delay = configuration.reconnectMin
        let pause = NSCondition()
        while true {
            do {
                return try step()
            } catch let error as PostgresError where error.isConnectionLoss {
                if lost() { throw error }
                logger.warning("database unreachable; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                let deadline = clock.now().addingTimeInterval(delay)
                emit(.databaseUnreachable("outcome"))
                pause.withLock { while !clock.wait(pause, until: deadline) {} }
                delay = min(configuration.reconnectMax, delay * 2)
            }
        }
    }
}

extension QueueWorker {
    /// `run()` for a worker process (`dynstereo work`, the volume benchmark's noise worker): SIGTERM and
    /// SIGINT call `stop()` instead of ending the process, so that running windows are handed back or finished
    /// (`configuration.onStop`) before `run()` returns.
    public func runUntilSignalled() {
        // Signals arrive on a dispatch queue, not in an async-signal context, so stop() may lock.
        let sources = [SIGTERM, SIGINT].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in stop() }
            source.resume()
            return source
        }
        run()
        sources.forEach { $0.cancel() }
    }
}
