// The worker's view of the queue: claim, heartbeat, finish; every write fenced by (job id, lease).
import Foundation

/// A job a worker has claimed. `lease` is the fencing token of this claim: every later write presents it,
/// so a worker that lost the job (its lease expired and someone else claimed it) changes nothing.
public struct ClaimedJob: Sendable {
    public let record: JobRecord
    public var id: UUID { record.id }
    public var lease: Int { record.lease }
    public var attempt: Int { record.attempt }
    public var parameters: JobParameters { record.parameters }
}

/// What a heartbeat learned.
public enum HeartbeatReply: Equatable, Sendable {
    /// The lease was extended; `cancelRequested` tells the worker to stop the network.
    case held(cancelRequested: Bool)
    /// The job is no longer ours (expired and re-queued, or deleted): stop and discard the work.
    case lost
}

/// The delay before a failed attempt is retried: min(cap, base * 2^(attempt - 1)) seconds.
public struct RetryBackoff: Sendable {
    public var base: Double
    public var cap: Double

    public init(base: Double = 2, cap: Double = 60) {
        self.base = base
        self.cap = cap
    }
}

/// One worker-side session with PostgreSQL. Not thread-safe: each worker thread (job slot, heartbeat,
/// listener) owns one. A call that finds the session dead reconnects first; if that fails it throws a
/// `PostgresError` whose `isConnectionLoss` is true, and the caller decides when to try again.
///
/// A write whose session dies at COMMIT may have committed; the worker then runs it again. `succeed`, `fail`
/// and `markCancelled` recognise their own committed move on the second run and report it as done; every
/// other write is fenced, so a second run changes nothing.
public final class WorkerQueue {
    private let url: String
    /// The time the statements run at (`SystemClock`: the database's).
    public let clock: JobClock
    private var connection: PostgresConnection?
    private var listening = false

    /// Does not connect yet: a worker must start even while the database is down.
    public init(url: String, clock: JobClock = SystemClock.shared) {
        self.url = url
        self.clock = clock
    }

    private var now: SQLValue { .timestamp(clock.statementTime) }

    private func session() throws -> PostgresConnection {
        if let connection, connection.isHealthy { return connection }
        connection = nil
        let fresh = try PostgresConnection(url: url)
        if listening { try fresh.executeScript(Queries.listen, name: "listen") }
        connection = fresh
        return fresh
    }

    /// Runs `body` on the session, dropping the session when the failure says it is dead.
    private func run<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        do {
            return try body(try session())
        } catch let error as PostgresError where error.isConnectionLoss {
            connection = nil
            throw error
        }
    }

    /// Claims the oldest claimable job, or returns nil when there is none. The claim is committed when
    /// this returns.
    public func claim(workerId: String, leaseSeconds: Double) throws -> ClaimedJob? {
        try run { connection in
            try connection.execute(Queries.claimJob, [
                .text(JobTransition.claim.from.rawValue), .text(JobTransition.claim.to.rawValue), .text(workerId),
                .double(leaseSeconds), now,
            ]).first.map { ClaimedJob(record: try Queries.decodeJob($0)) }
        }
    }

    /// The job's frames in order.
    public func inputs(of job: ClaimedJob) throws -> [InputFrame] {
        try run { connection in
            try connection.execute(Queries.loadInputs, [.uuid(job.id)], binaryResults: true).rows.map { row in
                InputFrame(index: try row.int(0), name: try row.string(1), left: try row.data(2), right: try row.data(3))
            }
        }
    }

    /// Extends the lease and records progress; reports a cancellation request or the loss of the lease.
    public func heartbeat(_ job: ClaimedJob, framesDone: Int, leaseSeconds: Double) throws -> HeartbeatReply {
        try run { connection in
            guard let row = try connection.execute(Queries.heartbeat, [
                .uuid(job.id), .int(job.lease), .double(leaseSeconds), .int(framesDone),
                .text(JobTransition.claim.to.rawValue), now,
            ]).first else { return .lost }
            return .held(cancelRequested: try row.bool(0))
        }
    }

    /// Stores the results and marks the job succeeded, atomically. False (and nothing stored) when the
    /// lease was lost. True without doing anything when this lease already made the job succeed: a run
    /// whose session died at COMMIT after the commit.
    public func succeed(_ job: ClaimedJob, results: [ResultBlob]) throws -> Bool {
        let transition = JobTransition.succeed
        return try run { connection in
            try connection.transaction {
                // The row lock keeps the reaper and the API's cancel out until the results are in.
                let status = try connection.execute(Queries.lockFencedJob, [.uuid(job.id), .int(job.lease)])
                    .first.map { try $0.string(0) }
                guard status == transition.from.rawValue else { return status == transition.to.rawValue }
                for result in results {
                    try connection.execute(Queries.insertResult, [.uuid(job.id), .text(result.path), .bytes(result.data)])
                }
                return try connection.execute(Queries.succeedJob, [
                    .uuid(job.id), .int(job.lease), .text(transition.from.rawValue), .text(transition.to.rawValue), now,
                ]).count == 1
            }
        }
    }

    /// Fails the job for good (bad input: retrying cannot help). False when the lease was lost.
    public func fail(_ job: ClaimedJob, error: JobErrorInfo) throws -> Bool {
        try finish(job, .fail, error: error)
    }

    /// Ends the job as cancelled after the worker stopped the network on request.
    public func markCancelled(_ job: ClaimedJob) throws -> Bool {
        try finish(job, .cancelRunning, error: nil)
    }

    /// True too when this lease already made the move (a run whose session died at COMMIT after the commit).
    private func finish(_ job: ClaimedJob, _ transition: JobTransition, error: JobErrorInfo?) throws -> Bool {
        try run { connection in
            let moved = try connection.execute(Queries.finishJob, [
                .uuid(job.id), .int(job.lease), .text(transition.from.rawValue), .text(transition.to.rawValue),
                .optional(error?.code), .optional(error?.message), now,
            ]).count == 1
            if moved { return true }
            let status = try connection.execute(Queries.fencedStatus, [.uuid(job.id), .int(job.lease)]).first.map { try $0.string(0) }
            return status == transition.to.rawValue
        }
    }

    /// Ends this attempt after an error that a retry may fix: the job is queued again with backoff, or
    /// fails with this error when its attempts are used up (or is cancelled if that was requested).
    /// Returns the job's new status, nil when the lease was lost.
    public func retry(_ job: ClaimedJob, error: JobErrorInfo, backoff: RetryBackoff) throws -> JobStatus? {
        try run { connection in
            let row = try connection.execute(Queries.retryJob, [.uuid(job.id), .int(job.lease)]
                                             + retryParameters(error: error, backoff: backoff)
                                             + [.text(JobTransition.retry.from.rawValue)]).first
            let status = try row.map { try $0.string(0) }
            if status == JobTransition.retry.to.rawValue { try connection.execute(Queries.notifyWorkers, [.text(job.id.uuidString)]) }
            return status.flatMap(JobStatus.init(rawValue:))
        }
    }

    /// Gives the job back on shutdown without spending its attempt. Returns the new status (queued, or
    /// cancelled if that was requested), nil when the lease was lost.
    public func handBack(_ job: ClaimedJob) throws -> JobStatus? {
        try run { connection in
            let row = try connection.execute(Queries.handBackJob, [
                .uuid(job.id), .int(job.lease), .text(JobTransition.cancelRunning.to.rawValue), .text(JobTransition.handBack.to.rawValue),
                .text(JobTransition.handBack.from.rawValue), now,
            ]).first
            try connection.execute(Queries.notifyWorkers, [.text(job.id.uuidString)])
            return try row.flatMap { JobStatus(rawValue: try $0.string(0)) }
        }
    }

    /// The lease reaper: every running job whose worker stopped heartbeating is retried (or failed, or
    /// cancelled) exactly as `retry` would. Safe to run from every worker at once.
    public func expireLeases(backoff: RetryBackoff) throws -> [(id: UUID, status: JobStatus)] {
        try run { connection in
            let error = JobErrorInfo(code: "worker_lost", message: "the worker stopped heartbeating before the job finished")
            let rows = try connection.execute(Queries.expireLeases, retryParameters(error: error, backoff: backoff)
                                              + [.text(JobTransition.retry.from.rawValue)]).rows
            let expired = try rows.map { row -> (id: UUID, status: JobStatus) in
                guard let status = JobStatus(rawValue: try row.string(1)) else { throw PostgresError.decoding("status \(try row.string(1))") }
                return (try row.uuid(0), status)
            }
            if expired.contains(where: { $0.status == JobTransition.retry.to }) {
                try connection.execute(Queries.notifyWorkers, [.text("")])
            }
            return expired
        }
    }

    /// Retention: deletes the inputs and results of every job that finished (succeeded, failed or
    /// cancelled) more than `age` seconds ago, `batchSize` jobs per short transaction, until none is left
    /// or `shouldStop` says so between batches. Job rows stay, with `resultsExpiredAt` set. Safe to run
    /// from every worker at once. Returns the ids of the jobs it expired.
    public func expireResults(olderThan age: Double, batchSize: Int = 100,
                              shouldStop: () -> Bool = { false }) throws -> [UUID] {
        precondition(age >= 0 && batchSize >= 1, "retention needs a non-negative age and a positive batch")
        var expired: [UUID] = []
        while !shouldStop() {
            let batch = try run { connection in
                try connection.execute(Queries.expireResultsBatch, [.double(age), .int(batchSize), .statuses(JobStatus.terminal), now])
                    .rows.map { try $0.uuid(0) }
            }
            expired += batch
            // A short batch means nothing was left when it ran (or the rest is locked by another worker,
            // which finishes it).
            if batch.count < batchSize { break }
        }
        return expired
    }

    /// The values `Queries.retryAssignments` expects.
    private func retryParameters(error: JobErrorInfo, backoff: RetryBackoff) -> [SQLValue] {
        let values: [SQLValue] = [
            .text(JobTransition.cancelRunning.to.rawValue), .text(JobTransition.fail.to.rawValue), .text(JobTransition.retry.to.rawValue),
            .text(error.code), .text(error.message), .double(backoff.base), .double(backoff.cap), now,
        ]
        assert(values.count == Queries.retryParameterCount)
        return values
    }

    /// Subscribes this session to enqueue notifications (re-subscribed after every reconnect).
    public func listen() throws {
        listening = true
        try run { _ in }
        try connection?.executeScript(Queries.listen, name: "listen")
    }

    /// Waits up to `timeout` seconds for a notification; true if one came.
    public func waitForJobs(timeout: Double) throws -> Bool {
        try run { connection in !(try connection.waitForNotifications(timeout: timeout)).isEmpty }
    }

    /// Drops the session (the next call reconnects).
    public func disconnect() {
        connection = nil
    }
}
