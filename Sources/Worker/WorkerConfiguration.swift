// The knobs of a headless worker, with defaults that re-run a dead worker's job well within 60 s.
import Foundation
import JobQueue

/// How a worker claims, heartbeats and shuts down.
public struct WorkerConfiguration: Sendable {
    /// What SIGTERM does to a job in progress.
    public enum StopBehaviour: String, Sendable, CaseIterable {
        /// Stop the network and put the job back in the queue without spending an attempt.
        case handBack = "hand-back"
        /// Let the job run to its end, then exit.
        case finish
    }

    /// Recorded on the jobs this worker claims (slot number appended).
    public var workerId: String
    /// Jobs run at once, each on its own thread and connection.
    public var concurrency: Int
    /// How long a claim stays valid without a heartbeat. With the defaults a job whose worker died is
    /// re-queued at most `leaseSeconds + reapInterval` (25 s) after the last heartbeat.
    public var leaseSeconds: Double
    public var heartbeatInterval: Double
    /// Fallback poll in case a notification was missed (a lost LISTEN session). Enqueues, retries, re-queues
    /// by the lease reaper and hand-backs notify, and an idle slot waits no longer than the earliest backoff.
    public var pollInterval: Double
    /// How often this worker looks for expired leases (every worker does; the statement is idempotent).
    public var reapInterval: Double
    public var backoff: RetryBackoff
    /// Seconds after a job finished (succeeded, failed or cancelled) when its inputs and results are
    /// deleted by this worker's maintenance; nil keeps them forever. The job row stays.
    public var resultRetention: Double?
    /// How often the maintenance looks for such jobs (every worker does; batches skip each other's rows).
    public var retentionInterval: Double
    /// Jobs per retention transaction: small, so no lock is held for long.
    public var retentionBatchSize: Int
    public var onStop: StopBehaviour
    /// Reconnection delays after losing the database: doubling from `reconnectMin` up to `reconnectMax`.
    public var reconnectMin: Double
    public var reconnectMax: Double

    public init(workerId: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)",
                concurrency: Int = 1, leaseSeconds: Double = 20, heartbeatInterval: Double = 2, pollInterval: Double = 5,
                reapInterval: Double = 5, backoff: RetryBackoff = RetryBackoff(), onStop: StopBehaviour = .handBack,
                reconnectMin: Double = 0.25, reconnectMax: Double = 10,
                resultRetention: Double? = 7 * 86_400, retentionInterval: Double = 300, retentionBatchSize: Int = 100) {
        self.workerId = workerId
        self.concurrency = concurrency
        self.leaseSeconds = leaseSeconds
        self.heartbeatInterval = heartbeatInterval
        self.pollInterval = pollInterval
        self.reapInterval = reapInterval
        self.backoff = backoff
        self.onStop = onStop
        self.reconnectMin = reconnectMin
        self.reconnectMax = reconnectMax
        self.resultRetention = resultRetention
        self.retentionInterval = retentionInterval
        self.retentionBatchSize = retentionBatchSize
    }

    /// Rejects settings under which a live worker would lose its own leases.
    public func validate() throws {
        guard concurrency >= 1 else { throw WorkerError.invalidConfiguration("concurrency must be at least 1") }
        guard heartbeatInterval > 0, leaseSeconds >= 2 * heartbeatInterval else {
            throw WorkerError.invalidConfiguration("the lease (\(leaseSeconds) s) must be at least twice the heartbeat interval (\(heartbeatInterval) s)")
        }
        guard pollInterval > 0, reapInterval > 0, retentionInterval > 0 else { throw WorkerError.invalidConfiguration("intervals must be positive") }
        if let resultRetention, !(resultRetention.isFinite && resultRetention >= 0) {
            throw WorkerError.invalidConfiguration("the result retention must be a non-negative number of seconds")
        }
        guard retentionBatchSize >= 1 else { throw WorkerError.invalidConfiguration("the retention batch size must be at least 1") }
    }
}

/// Errors that stop a worker from starting.
public enum WorkerError: Error, CustomStringConvertible {
    case invalidConfiguration(String)
    /// The process is out of something the worker needs to start (file descriptors).
    case outOfResources(String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(message): return "invalid worker configuration: \(message)"
        case let .outOfResources(message): return "the worker cannot start: \(message)"
        }
    }
}
