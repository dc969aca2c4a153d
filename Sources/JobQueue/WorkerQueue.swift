// The worker's view of the queue: plan, claim windows, heartbeat, store; every write fenced by (job id, window, lease).
import Foundation

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

    /// Plans the windows of up to `limit` queued jobs that have none yet (queued before migration 0006),
    /// each in its own short transaction; jobs another worker is planning are skipped. Returns how many it planned.
    @discardableResult
    public func planPendingJobs(limit: Int = 10) throws -> Int {
        try run { connection in
            try connection.transaction {
                let rows = try connection.execute(Queries.unplannedJobs, [.statuses(JobStatus.unfinished), .int(limit)]).rows
                for row in rows {
                    try WindowPlanner.store(job: try row.uuid(0), frames: try row.int(1), kernelSize: try row.int(2),
                                            maxAttempts: try row.int(3), now: now, on: connection)
                }
                return rows.count
            }
        }
    }

    /// Claims a window (or a finishing step) by the order `Queries.claimWindow` documents, or returns nil
    /// when there is none. The claim is committed when this returns.
    public func claim(workerId: String, leaseSeconds: Double) throws -> ClaimedWindow? {
        try run { connection in
            try connection.execute(Queries.claimWindow, [
                .text(JobTransition.claim.from.rawValue), .text(JobTransition.claim.to.rawValue), .text(workerId),
                .double(leaseSeconds), now, .text(JobTransition.succeed.to.rawValue), .statuses(JobStatus.unfinished),
            ]).first.map { row in
                ClaimedWindow(jobId: try row.uuid(0), lease: try row.int(1), window: try Queries.decodeWindow(row, from: 2),
                              parameters: try Queries.decodeParameters(row, core: 15, video: 20),
                              framesTotal: try row.int(19),
                              source: JobSource(rawValue: try row.string(29)) ?? .frames, videoRate: try row.string(30))
            }
        }
    }

    /// Seconds until a window becomes claimable by its backoff ending (zero or less when one is claimable
    /// now), nil when none waits: how long an idle worker may wait before it must look again, notified or not.
    public func secondsUntilClaimable() throws -> Double? {
        try run { connection in
            try connection.execute(Queries.secondsUntilClaimable, [
                .text(JobTransition.claim.from.rawValue), .text(JobTransition.succeed.to.rawValue), .statuses(JobStatus.unfinished), now,
            ]).first.map { try $0.double(0) }
        }
    }

    /// The window's input frames in order: only those it reads.
    public func inputs(of window: ClaimedWindow) throws -> [InputFrame] {
        try run { connection in
            try connection.execute(Queries.loadWindowInputs, [
                .uuid(window.jobId), .int(window.window.inputFrames.lowerBound), .int(window.window.inputFrames.upperBound),
            ], binaryResults: true).rows.map { row in
                InputFrame(index: try row.int(0), name: try row.string(1), left: try row.data(2), right: try row.data(3))
            }
        }
    }

    /// Extends the window's lease and records its iterations; reports the job's cancellation or the loss of the lease.
    public func heartbeat(_ window: ClaimedWindow, iterationsDone: Int, iterationsTotal: Int?, leaseSeconds: Double) throws -> HeartbeatReply {
        try run { connection in
            guard let row = try connection.execute(Queries.heartbeatWindow, fence(window) + [
                .double(leaseSeconds), .int(iterationsDone), iterationsTotal.map(SQLValue.int) ?? .null,
                .text(JobTransition.claim.to.rawValue), now,
            ]).first else { return .lost }
            return .held(cancelRequested: try row.bool(0))
        }
    }

    /// Stores a window's output frames and marks it succeeded, in one transaction. False (and nothing stored)
    /// when the lease was lost. True without doing anything when this lease already stored them: a run whose
    /// session died at COMMIT after the commit. Each frame must be one the window gives.
    public func succeed(_ window: ClaimedWindow, frames: [FrameResult]) throws -> Bool {
        precondition(window.kind == .window, "the finishing step ends with finish(_:)")
        precondition(frames.map(\.frameIndex) == Array(window.window.resultFrames), "a window stores exactly the frames it gives")
        return try moveFenced(window, .succeed) { connection in
            for frame in frames {
                try connection.execute(Queries.insertFrame, [
                    .uuid(window.jobId), .int(frame.frameIndex), .text(frame.name), .int(frame.height), .int(frame.width),
                    .bytes(frame.disparity), frame.disparityPNG.map(SQLValue.bytes) ?? .null, frame.depthPNG.map(SQLValue.bytes) ?? .null,
                    .double(Double(frame.minDisparity)), .double(Double(frame.maxDisparity)),
                ])
            }
            try connection.execute(Queries.addFramesDone, [.uuid(window.jobId), .int(frames.count)])
            // Another window, or the finishing step, may be claimable now.
            try connection.execute(Queries.notifyWorkers, [.text(window.jobId.uuidString)])
        }
    }

    /// The finishing step's colour scale: the smallest and largest finite disparity of the job's frames
    /// (nil when no frame has one).
    public func disparityRange(of step: ClaimedWindow) throws -> ClosedRange<Float>? {
        try run { connection in
            guard let row = try connection.execute(Queries.disparityRange, [.uuid(step.jobId)]).first,
                  !row.isNull(0), !row.isNull(1) else { return nil }
            let (low, high) = (Float(try row.double(0)), Float(try row.double(1)))
            return low <= high ? low...high : nil
        }
    }

    /// The frames the finishing step still has to render, in order (all of them on its first run).
    public func framesToRender(_ step: ClaimedWindow) throws -> [Int] {
        try run { connection in
            try connection.execute(Queries.framesToRender, [.uuid(step.jobId)]).rows.map { try $0.int(0) }
        }
    }

    /// One stored frame with its left input, for the finishing step.
    public func storedFrame(_ step: ClaimedWindow, frame: Int) throws -> StoredFrame? {
        try run { connection in
            try connection.execute(Queries.frameForRendering, [.uuid(step.jobId), .int(frame)], binaryResults: true).first.map { row in
                StoredFrame(frameIndex: frame, height: try row.int(0), width: try row.int(1), disparity: try row.data(2),
                            leftPNG: row.isNull(3) ? nil : try row.data(3), name: try row.string(4))
            }
        }
    }

    /// Stores one rendered frame; false when the finishing step's lease was lost.
    public func storeRendered(_ step: ClaimedWindow, frame: Int, _ rendered: RenderedFrame) throws -> Bool {
        try run { connection in
            try connection.execute(Queries.storeRenderedFrame, fence(step) + [
                .int(frame), rendered.colorPNG.map(SQLValue.bytes) ?? .null, rendered.videoPNG.map(SQLValue.bytes) ?? .null,
                .text(JobTransition.claim.to.rawValue),
            ]).count == 1
        }
    }

    /// Ends the finishing step, which makes the job succeed. False when its lease was lost; true too when
    /// this lease already did it.
    public func finish(_ step: ClaimedWindow) throws -> Bool {
        precondition(step.kind == .finish, "windows end with succeed(_:frames:)")
        return try moveFenced(step, .succeed)
    }

    /// Fails the window for good (bad input: retrying cannot help), and with it the job: its other windows
    /// are cancelled and the job's error names this window. False when the lease was lost.
    public func fail(_ window: ClaimedWindow, error: JobErrorInfo) throws -> Bool {
        try run { connection in
            try connection.transaction {
                let transition = JobTransition.fail
                let status = try connection.execute(Queries.lockFencedWindow, fence(window)).first.map { try $0.string(0) }
                guard status == transition.from.rawValue else { return status == transition.to.rawValue }
                try move(window, transition, error: error, on: connection)
                try WindowPlanner.failJob(window.jobId, window: window.window, error: error, now: now, on: connection)
                return true
            }
        }
    }

    /// Ends the window as cancelled after its worker stopped the network on request (the job is cancelled
    /// once no window of it runs).
    public func markCancelled(_ window: ClaimedWindow) throws -> Bool {
        try moveFenced(window, .cancelRunning)
    }

    /// Ends this attempt of the window after an error a retry may fix: queued again with backoff, or failed
    /// (failing the job) when its attempts are used up, or cancelled if the job's cancellation was requested.
    /// Returns the window's new status, nil when the lease was lost.
    public func retry(_ window: ClaimedWindow, error: JobErrorInfo, backoff: RetryBackoff) throws -> JobStatus? {
        try run { connection in
            try connection.transaction {
                let row = try connection.execute(Queries.retryWindow, fence(window) + retryParameters(error: error, backoff: backoff)
                                                 + [.text(JobTransition.retry.from.rawValue)]).first
                guard let status = try row.flatMap({ JobStatus(rawValue: try $0.string(0)) }) else { return nil }
                try WindowPlanner.afterAttempt(job: window.jobId, window: window.window, status: status, error: error, now: now, on: connection)
                if status == JobTransition.retry.to {
                    // Idle workers learn of the retry now and wait for its backoff to end (`secondsUntilClaimable`).
                    try connection.execute(Queries.notifyWorkers, [.text(window.jobId.uuidString)])
                }
                return status
            }
        }
    }

    /// Gives the window back on shutdown without spending its attempt. Returns its new status (queued, or
    /// cancelled if that was requested), nil when the lease was lost.
    public func handBack(_ window: ClaimedWindow) throws -> JobStatus? {
        try run { connection in
            try connection.transaction {
                let row = try connection.execute(Queries.handBackWindow, fence(window) + [
                    .text(JobTransition.cancelRunning.to.rawValue), .text(JobTransition.handBack.to.rawValue),
                    .text(JobTransition.handBack.from.rawValue), now,
                ]).first
                try WindowPlanner.deriveStatus(job: window.jobId, now: now, on: connection)
                try connection.execute(Queries.notifyWorkers, [.text(window.jobId.uuidString)])
                return try row.flatMap { JobStatus(rawValue: try $0.string(0)) }
            }
        }
    }

    /// The lease reaper: every running window whose worker stopped heartbeating is retried (or failed,
    /// failing its job, or cancelled) exactly as `retry` would. Safe to run from every worker at once.
    /// Returns each window it moved, with its job and new status.
    public func expireLeases(backoff: RetryBackoff) throws -> [(id: UUID, window: Int, status: JobStatus)] {
        try run { connection in
            try connection.transaction {
                let error = JobErrorInfo(code: "worker_lost", message: "the worker stopped heartbeating before the window finished")
                let rows = try connection.execute(Queries.expireWindowLeases, retryParameters(error: error, backoff: backoff)
                                                  + [.text(JobTransition.retry.from.rawValue)]).rows
                let expired = try rows.map { row -> (id: UUID, window: Int, status: JobStatus) in
                    guard let status = JobStatus(rawValue: try row.string(2)) else { throw PostgresError.decoding("status \(try row.string(2))") }
                    return (try row.uuid(0), try row.int(1), status)
                }
                for (job, index, status) in expired.sorted(by: { ($0.id.uuidString, $0.window) < ($1.id.uuidString, $1.window) }) {
                    let window = try connection.execute(Queries.windowsOfJob, [.uuid(job)]).rows.map { try Queries.decodeWindow($0) }
                        .first { $0.index == index }
                    try WindowPlanner.afterAttempt(job: job, window: window, status: status, error: window?.error ?? error, now: now, on: connection)
                }
                // Idle workers claim the re-queued windows at once (or when their backoff ends), not at their next poll.
                for id in Set(expired.filter { $0.status == JobTransition.retry.to }.map(\.id)) {
                    try connection.execute(Queries.notifyWorkers, [.text(id.uuidString)])
                }
                return expired
            }
        }
    }

    // MARK: Video jobs (migration 0007)

    /// The preparing step's uploaded parts (`left`, `right` or `stereo`) copied out of their chunks into
    /// files of `folder`, named after the parts, one chunk in memory at a time.
    public func copyUploads(of step: ClaimedWindow, into folder: URL) throws -> [String: URL] {
        precondition(step.kind == .prepare, "only the preparing step reads the upload")
        return try run { connection in
            var files: [String: URL] = [:]
            for row in try connection.execute(Queries.uploadParts, [.uuid(step.jobId)]).rows {
                let part = try row.string(0), chunks = try row.int(1)
                guard ["left", "right", "stereo"].contains(part) else { throw PostgresError.decoding("upload part '\(part)'") }
                let url = folder.appendingPathComponent(part)
                guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]),
                      let handle = FileHandle(forWritingAtPath: url.path) else {
                    throw JobQueueError.invalidInput("cannot write the upload to \(url.path)")
                }
                defer { try? handle.close() }
                for chunk in 0..<chunks {
                    guard let data = try connection.execute(Queries.uploadChunk, [.uuid(step.jobId), .text(part), .int(chunk)],
                                                            binaryResults: true).first else {
                        throw PostgresError.decoding("chunk \(chunk) of the upload '\(part)' is missing")
                    }
                    try handle.write(contentsOf: try data.data(0))
                }
                files[part] = url
            }
            return files
        }
    }

    /// Input frames an earlier run of this preparing step stored already (they are stored in order).
    public func storedInputCount(_ step: ClaimedWindow) throws -> Int {
        try run { connection in
            try connection.execute(Queries.storedInputCount, [.uuid(step.jobId)]).first.map { try $0.int(0) } ?? 0
        }
    }

    /// Stores one decoded input frame, fenced by the preparing step's lease; false when the lease was lost.
    /// A frame an earlier run stored stays as it was.
    public func storeInput(_ step: ClaimedWindow, _ frame: InputFrame) throws -> Bool {
        try run { connection in
            try connection.execute(Queries.insertPreparedInput, fence(step) + [
                .text(JobTransition.claim.to.rawValue), .int(frame.index), .text(frame.name), .bytes(frame.left), .bytes(frame.right),
            ]).count == 1
        }
    }

    /// Ends the preparing step once every input frame is stored: the upload's chunks are deleted and the
    /// windows become claimable. False when the lease was lost; true too when this lease already did it.
    public func finishPreparing(_ step: ClaimedWindow) throws -> Bool {
        precondition(step.kind == .prepare, "finishPreparing ends the preparing step")
        return try moveFenced(step, .succeed) { connection in
            try connection.execute(Queries.deleteUploads, [.uuid(step.jobId)])
            try connection.execute(Queries.notifyWorkers, [.text(step.jobId.uuidString)])
        }
    }

    /// Stores the file at `url` as the job's result `path` (`video.mp4`, `points/0007.ply`) in chunks of
    /// `JobStore.chunkBytes`, replacing an earlier run's, in one transaction fenced by the finishing step's
    /// lease; false when the lease was lost.
    public func storeFile(_ step: ClaimedWindow, path: String, from url: URL) throws -> Bool {
        precondition(step.kind == .finish, "whole-file results are the finishing step's")
        return try run { connection in
            try connection.transaction {
                guard try clearFile(step, path: path, on: connection) else { return false }
                guard let handle = FileHandle(forReadingAtPath: url.path) else {
                    throw JobQueueError.invalidInput("the rendered file \(url.path) is missing")
                }
                defer { try? handle.close() }
                var chunk = 0
                while let data = try handle.read(upToCount: JobStore.chunkBytes), !data.isEmpty {
                    try connection.execute(Queries.insertFileChunk, [.uuid(step.jobId), .text(path), .int(chunk), .bytes(data)])
                    chunk += 1
                }
                return true
            }
        }
    }

    /// `storeFile` for a file already in memory (one frame's point cloud).
    public func storeFile(_ step: ClaimedWindow, path: String, data: Data) throws -> Bool {
        precondition(step.kind == .finish, "whole-file results are the finishing step's")
        return try run { connection in
            try connection.transaction {
                guard try clearFile(step, path: path, on: connection) else { return false }
                var offset = data.startIndex, chunk = 0
                while offset < data.endIndex {
                    let end = min(data.endIndex, offset + JobStore.chunkBytes)
                    try connection.execute(Queries.insertFileChunk, [.uuid(step.jobId), .text(path), .int(chunk), .bytes(data[offset..<end])])
                    offset = end
                    chunk += 1
                }
                return true
            }
        }
    }

    /// Within a `storeFile` transaction: locks the finishing step's row under its lease and deletes an
    /// earlier run's chunks of `path`; false (nothing deleted) when the lease was lost.
    private func clearFile(_ step: ClaimedWindow, path: String, on connection: PostgresConnection) throws -> Bool {
        let status = try connection.execute(Queries.lockFencedWindow, fence(step)).first.map { try $0.string(0) }
        guard status == JobTransition.claim.to.rawValue else { return false }
        try connection.execute(Queries.deleteFile, [.uuid(step.jobId), .text(path)])
        return true
    }

    /// A window's fence: job, window, lease.
    private func fence(_ window: ClaimedWindow) -> [SQLValue] {
        [.uuid(window.jobId), .int(window.index), .int(window.lease)]
    }

    /// Ends `window` by `transition` in one transaction, with its row locked under its lease: `alongside`
    /// (what must commit with the move or not at all), the move, and the job's status derived again. A
    /// NOTIFY in `alongside` is sent at COMMIT, wherever it stands. False when the lease was lost; true
    /// without doing anything when this lease already made the move (a session that died at COMMIT after
    /// the commit, retried).
    private func moveFenced(_ window: ClaimedWindow, _ transition: JobTransition,
                            alongside: (PostgresConnection) throws -> Void = { _ in }) throws -> Bool {
        try run { connection in
            try connection.transaction {
                let status = try connection.execute(Queries.lockFencedWindow, fence(window)).first.map { try $0.string(0) }
                guard status == transition.from.rawValue else { return status == transition.to.rawValue }
                try alongside(connection)
                try move(window, transition, error: nil, on: connection)
                try WindowPlanner.deriveStatus(job: window.jobId, now: now, on: connection)
                return true
            }
        }
    }

    /// The fenced move of a locked window out of `running`.
    private func move(_ window: ClaimedWindow, _ transition: JobTransition, error: JobErrorInfo?, on connection: PostgresConnection) throws {
        let moved = try connection.execute(Queries.finishWindow, fence(window) + [
            .text(transition.from.rawValue), .text(transition.to.rawValue), now, .optional(error?.code), .optional(error?.message),
        ]).count
        precondition(moved == 1, "the window was locked under this lease")
    }

    /// Retention: every job that finished (succeeded, failed or cancelled) more than `age` seconds ago gets
    /// `resultsExpiredAt`, `batchSize` jobs per short transaction; then their inputs and results are deleted
    /// `rowBatchSize` rows (frames) per short transaction, so a long video costs many small transactions,
    /// never one large one. Stops between batches when `shouldStop` says so; the next pass goes on where this
    /// one stopped. Job rows (and their windows) stay. Safe to run from every worker at once. Returns the ids
    /// of the jobs it expired.
    public func expireResults(olderThan age: Double, batchSize: Int = 100, rowBatchSize: Int = 64,
                              shouldStop: () -> Bool = { false }) throws -> [UUID] {
        precondition(age >= 0 && batchSize >= 1 && rowBatchSize >= 1, "retention needs a non-negative age and positive batches")
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
        for (table, key) in Queries.purgedTables {
            while !shouldStop() {
                let deleted = try run { connection in try connection.execute(Queries.purgeRows(table, key: key), [.int(rowBatchSize)]).count }
                if deleted < rowBatchSize { break }
            }
        }
        if !shouldStop() { _ = try run { connection in try connection.execute(Queries.finishPurge) } }
        return expired
    }

    /// The values `Queries.windowRetryAssignments` expects.
    private func retryParameters(error: JobErrorInfo, backoff: RetryBackoff) -> [SQLValue] {
        let values: [SQLValue] = [
            .text(JobTransition.cancelRunning.to.rawValue), .text(JobTransition.fail.to.rawValue), .text(JobTransition.retry.to.rawValue),
            .text(error.code), .text(error.message), .double(backoff.base), .double(backoff.cap), now,
        ]
        assert(values.count == Queries.windowRetryParameterCount)
        return values
    }

    /// Subscribes this session to enqueue notifications (re-subscribed after every reconnect).
    public func listen() throws {
        listening = true
        try run { _ in }
        try connection?.executeScript(Queries.listen, name: "listen")
    }

    /// Waits up to `timeout` seconds for a notification; true if one came.
    public func waitForJobs(timeout: Double, interrupt: Int32? = nil) throws -> Bool {
        try run { connection in !(try connection.waitForNotifications(timeout: timeout, interrupt: interrupt)).isEmpty }
    }

    /// Drops the session (the next call reconnects).
    public func disconnect() {
        connection = nil
    }
}
