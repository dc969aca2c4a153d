// The API's view of the queue: create, read, list, cancel and delete jobs, and read their results.
import Foundation

/// Jobs in PostgreSQL as the HTTP API sees them. Thread-safe: calls share a small connection pool.
public final class JobStore: @unchecked Sendable {
    let pool: ConnectionPool
    /// Attempts a new job gets before it stays failed.
    public let maxAttempts: Int
    /// The limits of an API key that has none of its own (`api_keys` columns left NULL).
    public let defaultKeyLimits: KeyLimits
    /// The time the store's statements run at (`SystemClock`: the database's).
    public let clock: JobClock

    /// Connects once to fail early on a bad URL or an unreachable server.
    public init(url: String, maxAttempts: Int = 3, defaultKeyLimits: KeyLimits = .unlimited,
                clock: JobClock = SystemClock.shared) throws {
        precondition(maxAttempts >= 1, "a job needs at least one attempt")
        pool = ConnectionPool(url: url)
        self.maxAttempts = maxAttempts
        self.defaultKeyLimits = defaultKeyLimits
        self.clock = clock
        try ping()
    }

    private var now: SQLValue { .timestamp(clock.statementTime) }

    /// Creates a queued job with its frames and wakes the workers. With an idempotency key that was seen
    /// before, returns the existing job (`created == false`) if `payloadDigest` matches, and throws
    /// `JobQueueError.idempotencyConflict` if it does not.
    public func enqueue(parameters: JobParameters, frames: [InputFrame], idempotencyKey: String?,
                        payloadDigest: String?, owner: UUID? = nil, uploadBytes: Int = 0) throws -> (job: JobRecord, created: Bool) {
        try enqueue(parameters: parameters, frameCount: frames.count, idempotencyKey: idempotencyKey,
                    payloadDigest: payloadDigest, owner: owner, uploadBytes: uploadBytes, frame: { frames[$0] })
    }

    /// `enqueue` for uploads too large to hold: `frame(i)` is asked for frames 0..<frameCount in order, inside
    /// the job's transaction, and each row is inserted before the next frame is asked for, so only one frame's
    /// bytes are alive at a time. An error thrown by `frame` rolls the job back and is rethrown unchanged.
    /// A replayed idempotency key returns before any frame is read. `owner` is the API key that submits
    /// (nil on an open server); idempotency keys are scoped to it, so another key's job is never found.
    ///
    /// With an owner, the key's limits apply (its own, else `defaultKeyLimits`): the key's row is locked
    /// for the transaction, so concurrent submissions by one key queue up behind each other and cannot
    /// both pass a limit. A new job that would make more than `maxQueuedJobs` unfinished jobs throws
    /// `queuedJobsLimit`; `uploadBytes` (the request body's size) are added to the key's count for the
    /// UTC day, and passing `maxUploadBytesPerDay` throws `dailyUploadLimit`. Either way nothing is stored.
    /// A replay counts against neither.
    ///
    /// Stored once, whatever the database does: the job's id is chosen before the transaction, and when the
    /// session dies under it (perhaps at COMMIT, with the job stored) the transaction runs again and first
    /// looks for that id, returning the stored job (`created == true`) instead of storing a second one.
    /// `frame` may then be asked for the frames again.
    public func enqueue(parameters: JobParameters, frameCount: Int, idempotencyKey: String?, payloadDigest: String?,
                        owner: UUID? = nil, uploadBytes: Int = 0,
                        frame: (Int) throws -> InputFrame) throws -> (job: JobRecord, created: Bool) {
        try enqueue(parameters: parameters, frameCount: frameCount, source: .frames, videoRate: Self.frameRate(parameters),
                    idempotencyKey: idempotencyKey, payloadDigest: payloadDigest, owner: owner, uploadBytes: uploadBytes) { id, connection in
            // Names only (a few bytes a frame), kept to learn whether they are the default ones.
            var names: [String] = []
            names.reserveCapacity(frameCount)
            for index in 0..<frameCount {
                let input = try frame(index)
                guard input.index == index else {
                    throw JobQueueError.invalidInput("frame indices must be 0..<\(frameCount) in order, got \(input.index) at \(index)")
                }
                try connection.execute(Queries.insertInput, [
                    .uuid(id), .int(input.index), .text(input.name), .bytes(input.left), .bytes(input.right),
                ])
                names.append(FrameNames.resultName(input.name))
            }
            if let own = FrameNames.toStore(names, selection: parameters.selection) {
                try connection.execute(Queries.setFrameNames, [.uuid(id), .textArray(own)])
            }
        }
    }

    /// The MP4 rate of a job of frames: `fps`, else 30, as `N/D` in whole thousandths.
    static func frameRate(_ parameters: JobParameters) -> String {
        let fps = parameters.fps ?? JobParameters.defaultFPS
        let thousandths = Int((fps * 1000).rounded())
        var (a, b) = (max(1, thousandths), 1000)
        while b != 0 { (a, b) = (b, a % b) }
        return "\(max(1, thousandths) / a)/\(1000 / a)"
    }

    /// Bytes per stored chunk of an uploaded video or a whole-file result: well under the "few MiB" any stored value may take.
    public static let chunkBytes = 1 << 20

    /// `enqueue` for a video job: the uploaded files (`left` and `right`, or `stereo`) are stored in chunks
    /// of `chunkBytes`, read from disk one chunk at a time, and the job gets a preparing step that decodes
    /// them into its input frames before its windows run. `frameCount` is the frames the selection keeps
    /// (counted from the container at upload); `videoRate` the MP4s' rate. `checkpoint` runs before each
    /// chunk: an error it throws (the client left) rolls the job back and is rethrown unchanged.
    public func enqueueVideo(parameters: JobParameters, frameCount: Int, source: JobSource, videoRate: String,
                             uploads: [(part: String, file: URL)], idempotencyKey: String?, payloadDigest: String?,
                             owner: UUID? = nil, uploadBytes: Int = 0,
                             checkpoint: () throws -> Void = {}) throws -> (job: JobRecord, created: Bool) {
        precondition(source.isVideo, "frames are stored with enqueue(parameters:frameCount:...)")
        return try enqueue(parameters: parameters, frameCount: frameCount, source: source, videoRate: videoRate,
                           idempotencyKey: idempotencyKey, payloadDigest: payloadDigest, owner: owner,
                           uploadBytes: uploadBytes) { id, connection in
            for (part, file) in uploads {
                guard let handle = FileHandle(forReadingAtPath: file.path) else {
                    throw JobQueueError.invalidInput("the upload '\(part)' vanished before it was stored")
                }
                defer { try? handle.close() }
                var chunk = 0
                while true {
                    try checkpoint()
                    let data = try handle.read(upToCount: Self.chunkBytes) ?? Data()
                    if data.isEmpty { break }
                    try connection.execute(Queries.insertUploadChunk, [.uuid(id), .text(part), .int(chunk), .bytes(data)])
                    chunk += 1
                }
            }
        }
    }

    private func enqueue(parameters: JobParameters, frameCount: Int, source: JobSource, videoRate: String,
                         idempotencyKey: String?, payloadDigest: String?, owner: UUID?, uploadBytes: Int,
                         storeInputs: (UUID, PostgresConnection) throws -> Void) throws -> (job: JobRecord, created: Bool) {
        do {
            try parameters.validate()
        } catch {
            throw JobQueueError.invalidParameters(error.message(for: .http))
        }
        guard frameCount > 0 else { throw JobQueueError.invalidInput("a job needs at least one frame") }
        precondition(uploadBytes >= 0, "upload sizes are not negative")
        let id = UUID()
        return try pool.transaction { connection, isRerun in
            if isRerun, let stored = try connection.execute(Queries.jobByID, [.uuid(id), .null]).first {
                return (try Queries.decodeJob(stored), true)
            }
            var limits: KeyLimits?
            if let owner {
                let own = try connection.execute(Queries.lockAPIKey, [.uuid(owner)]).first
                limits = defaultKeyLimits.overridden(maxQueuedJobs: try own.flatMap { $0.isNull(0) ? nil : try $0.int(0) },
                                                     maxUploadBytesPerDay: try own.flatMap { $0.isNull(1) ? nil : try $0.int(1) })
            }
            let inserted = try connection.execute(Queries.insertJob, [
                .uuid(id), .text(JobStatus.initial.rawValue), .int(parameters.iters), .int(parameters.kernelSize),
                .optional(parameters.focalPx), .optional(parameters.baselineM), .int(maxAttempts), .int(frameCount),
                .optional(idempotencyKey), .optional(payloadDigest), .optional(owner), now,
            ] + Queries.videoParameterValues(parameters) + [.text(source.rawValue), .text(videoRate)])
            guard let row = inserted.first else {
                // The key exists: this is a replay (same payload) or a conflict.
                guard let idempotencyKey,
                      let existing = try connection.execute(Queries.jobByIdempotencyKey,
                                                            [.text(idempotencyKey), owner.map(SQLValue.uuid) ?? .null]).first
                else { throw PostgresError.decoding("insert returned no row without an idempotency key") }
                let job = try Queries.decodeJob(existing)
                guard job.payloadDigest == payloadDigest else {
                    throw JobQueueError.idempotencyConflict(key: idempotencyKey, existing: job.id)
                }
                return (job, false)
            }
            if let owner, let limits {
                try enforce(limits, owner: owner, uploadBytes: uploadBytes, on: connection)
            }
            try storeInputs(id, connection)
            // The frame count is known, so the windows are planned in the job's own transaction.
            try WindowPlanner.store(job: id, frames: frameCount, kernelSize: parameters.kernelSize, maxAttempts: maxAttempts,
                                    prepare: source.isVideo, now: now, on: connection)
            try connection.execute(Queries.notifyWorkers, [.text(id.uuidString)])
            // Read again: planning set `windows_total`.
            let planned = try connection.execute(Queries.jobByID, [.uuid(id), .null]).first ?? row
            return (try Queries.decodeJob(planned), true)
        }
    }

    /// Checks the new job (already inserted, uncommitted) against the key's limits and accounts its bytes.
    private func enforce(_ limits: KeyLimits, owner: UUID, uploadBytes: Int, on connection: PostgresConnection) throws {
        if let maxQueued = limits.maxQueuedJobs {
            // The count includes the job just inserted.
            let unfinished = try connection.execute(Queries.unfinishedJobsOfKey, [.uuid(owner), .statuses(JobStatus.unfinished)])
                .first.map { try $0.int(0) } ?? 0
            if unfinished > maxQueued { throw JobQueueError.queuedJobsLimit(limit: maxQueued) }
        }
        let accounted = try connection.execute(Queries.addUploadBytes, [
            .uuid(owner), .int(uploadBytes), limits.maxUploadBytesPerDay.map(SQLValue.int) ?? .null, now,
        ])
        if accounted.count == 0, let maxBytes = limits.maxUploadBytesPerDay {
            let used = try connection.execute(Queries.keyUsage, [.uuid(owner), .statuses(JobStatus.unfinished), now])
                .first.map { try $0.int(3) } ?? 0
            throw JobQueueError.dailyUploadLimit(limit: maxBytes, used: used, requested: uploadBytes)
        }
    }

    /// The key's limits in force and its current usage; nil for an unknown key. A snapshot without locks,
    /// for refusing early: `enqueue` decides for good.
    public func usage(of owner: UUID) throws -> KeyUsage? {
        try pool.withConnection { connection in
            guard let row = try connection.execute(Queries.keyUsage, [.uuid(owner), .statuses(JobStatus.unfinished), now]).first
            else { return nil }
            let limits = defaultKeyLimits.overridden(maxQueuedJobs: row.isNull(0) ? nil : try row.int(0),
                                                     maxUploadBytesPerDay: row.isNull(1) ? nil : try row.int(1))
            return KeyUsage(limits: limits, unfinishedJobs: try row.int(2), uploadedBytesToday: try row.int(3))
        }
    }

    /// The job, or nil if unknown or (with `owner`) created by another API key.
    public func job(id: UUID, owner: UUID? = nil) throws -> JobRecord? {
        try pool.withConnection { connection in
            try connection.execute(Queries.jobByID, [.uuid(id), owner.map(SQLValue.uuid) ?? .null]).first.map(Queries.decodeJob)
        }
    }

    /// The job with its windows and its frames' names, read in one indexed statement whatever the video's
    /// length (the names are stored only for frames not named by their source index): what the API's job view
    /// shows. Nil if unknown or (with `owner`) created by another API key.
    public func report(id: UUID, owner: UUID? = nil) throws -> JobReport? {
        try pool.withConnection { connection in
            try connection.execute(Queries.jobReport, [.uuid(id), owner.map(SQLValue.uuid) ?? .null]).first
                .map { try Self.decodeReport($0, namesRead: true) }
        }
    }

    /// A row of `jobReport` (`namesRead`) or of `listJobs`.
    private static func decodeReport(_ row: Row, namesRead: Bool) throws -> JobReport {
        JobReport(job: try Queries.decodeJob(row), windows: try Queries.decodeWindowArrays(row, from: Queries.jobColumnCount),
                  frameNames: try Queries.decodeFrameNames(row, at: Queries.jobColumnCount + Queries.windowArrayColumnCount,
                                                           namesRead: namesRead))
    }

    /// Jobs newest first, optionally of one status. `next` is an opaque cursor for the following page
    /// (nil on the last page); pass it back as `after`.
    /// With `owner`, only that API key's jobs.
    public func list(status: JobStatus?, limit: Int, after cursor: String?,
                     owner: UUID? = nil) throws -> (jobs: [JobRecord], next: String?) {
        let (reports, next) = try reports(status: status, limit: limit, after: cursor, owner: owner)
        return (reports.map(\.job), next)
    }

    /// `list` with each job's windows, in one statement: what the API's job list shows. Frame names are not
    /// read, only whether a job has its own (`.ownUnread`).
    public func reports(status: JobStatus?, limit: Int, after cursor: String?,
                        owner: UUID? = nil) throws -> (jobs: [JobReport], next: String?) {
        guard (1...1000).contains(limit) else { throw JobQueueError.invalidParameters("limit must be in 1...1000, got \(limit)") }
        var cursorValues: [SQLValue] = [.null, .null]
        if let cursor {
            let (micros, id) = try Self.decodeCursor(cursor)
            cursorValues = [.int(micros), .uuid(id)]
        }
        // One row more than asked tells whether there is a next page.
        let jobs = try pool.withConnection { connection in
            try connection.execute(Queries.listJobs, [.optional(status?.rawValue)] + cursorValues
                                   + [.int(limit + 1), owner.map(SQLValue.uuid) ?? .null])
                .rows.map { try Self.decodeReport($0, namesRead: false) }
        }
        guard jobs.count > limit, let last = jobs.prefix(limit).last else { return (jobs, nil) }
        return (Array(jobs.prefix(limit)), Self.encodeCursor(last.job))
    }

    /// Cancels a job: its queued windows end at once, and so does the job when none of its windows runs;
    /// a running window's worker sees the request at its next heartbeat and stops, and the job reads
    /// `cancelled` once no window of it runs. A finished job is returned unchanged; nil if unknown.
    /// Cancelling twice changes nothing the first did not, so a lost session simply runs it again.
    public func cancel(id: UUID, owner: UUID? = nil) throws -> JobRecord? {
        try pool.withConnection(.idempotent) { connection in
            try connection.transaction {
                try connection.execute(Queries.cancelQueuedWindows, [
                    .uuid(id), .text(JobTransition.cancelQueued.from.rawValue), .text(JobTransition.cancelQueued.to.rawValue),
                    .optional(owner), now, .statuses(JobStatus.unfinished),
                ])
                if try connection.execute(Queries.requestCancel, [.uuid(id), .optional(owner), .statuses(JobStatus.unfinished)]).count == 1 {
                    try WindowPlanner.deriveStatus(job: id, now: now, on: connection)
                }
                return try connection.execute(Queries.jobByID, [.uuid(id), owner.map(SQLValue.uuid) ?? .null]).first.map(Queries.decodeJob)
            }
        }
    }

    /// The job's windows and its finishing step (last), in order; empty for a job stored before windows.
    public func windows(id: UUID) throws -> [JobWindow] {
        try pool.withConnection { connection in
            try connection.execute(Queries.windowsOfJob, [.uuid(id)]).rows.map { try Queries.decodeWindow($0) }
        }
    }

    /// Deletes a job with its inputs and results; false if there was no such job. A worker still running
    /// it finds its lease gone at the next heartbeat and stops. Run at most once: after a session lost under
    /// it the outcome is unknown and the error is thrown (a second run would answer "no such job" for a job
    /// the first run deleted).
    public func delete(id: UUID, owner: UUID? = nil) throws -> Bool {
        try pool.withConnection(.once) { connection in
            try connection.execute(Queries.deleteJob, [.uuid(id), owner.map(SQLValue.uuid) ?? .null]).count > 0
        }
    }

    /// The stored output paths of a job, sorted: the per-frame files stored so far (with `disparity.npy`
    /// once the finishing step rendered every colour frame), or the files of a job stored before windows.
    public func resultPaths(id: UUID) throws -> [String] {
        try pool.withConnection { connection in
            let legacy = try connection.execute(Queries.resultPaths, [.uuid(id)]).rows.map { try $0.string(0) }
            if !legacy.isEmpty { return legacy }
            return try frameLayout(id: id, on: connection)?.files.map(\.path) ?? []
        }
    }

    /// One result file's bytes, nil if the job has no such file. `disparity.npy` of a job with per-frame rows
    /// is assembled here from its frames, for tests and small jobs (the API streams it with
    /// `streamDisparityArray` instead, never holding it).
    public func result(id: UUID, path: String) throws -> Data? {
        try pool.withConnection { connection in
            if let legacy = try connection.execute(Queries.resultData, [.uuid(id), .text(path)], binaryResults: true).first {
                return try legacy.data(0)
            }
            if path == FrameFiles.disparityArray {
                guard let layout = try frameLayout(id: id, on: connection) else { return nil }
                var data = Data()
                try streamDisparityArray(id: id, layout: layout, bytes: 0..<layout.npySize, on: connection) { data.append($0) }
                return data
            }
            guard let (kind, name) = FrameFiles.parse(path) else {
                // A whole-file result, assembled from its chunks (the API streams large ones with `streamFile`).
                var data = Data(), chunk = 0
                while let row = try connection.execute(Queries.fileChunk, [.uuid(id), .text(path), .int(chunk)], binaryResults: true).first {
                    data.append(try row.data(0))
                    chunk += 1
                }
                return chunk > 0 ? data : nil
            }
            guard let row = try connection.execute(Queries.frameFile(kind.column), [.uuid(id), .text(name)], binaryResults: true).first,
                  !row.isNull(0) else { return nil }
            return try row.data(0)
        }
    }

    /// Writes a job's `disparity.npy` to `sink` piece by piece from its per-frame rows: the header, then each
    /// frame in order, one frame in memory at a time. False (nothing written) when the job has no frames.
    public func streamDisparityArray(id: UUID, sink: (Data) throws -> Void) throws -> Bool {
        guard let layout = try frameLayout(id: id) else { return false }
        try streamDisparityArray(id: id, layout: layout, bytes: 0..<layout.npySize, sink: sink)
        return true
    }

    /// The stored frames of a job with per-frame rows (nil when it has none: not started, or stored before
    /// migration 0006), with their files' sizes, read without reading the files.
    public func frameLayout(id: UUID) throws -> FrameLayout? {
        try pool.withConnection { connection in try frameLayout(id: id, on: connection) }
    }

    private func frameLayout(id: UUID, on connection: PostgresConnection) throws -> FrameLayout? {
        let frames = try connection.execute(Queries.frameLayout, [.uuid(id)]).rows.map { row -> FrameLayout.Frame in
            var sizes: [FrameFiles.Kind: Int] = [:]
            for (column, kind) in zip(4..., FrameFiles.Kind.allCases) where !row.isNull(column) { sizes[kind] = try row.int(column) }
            return FrameLayout.Frame(index: try row.int(0), name: try row.string(1), height: try row.int(2), width: try row.int(3), sizes: sizes)
        }
        guard !frames.isEmpty else { return nil }
        let files = try connection.execute(Queries.fileSizes, [.uuid(id)]).rows.map {
            FrameLayout.StoredFile(path: try $0.string(0), size: try $0.int(1))
        }
        let finished = try connection.execute(Queries.finishStored, [.uuid(id), .text(JobTransition.succeed.to.rawValue)])
            .first.map { try $0.bool(0) } ?? false
        let kinds = try connection.execute(Queries.jobByID, [.uuid(id), .null]).first.map { try Queries.decodeJob($0).parameters.resultKinds }
        return FrameLayout(frames: frames, wholeFiles: files, finished: finished, kinds: kinds)
    }

    /// The size of a whole-file result stored in chunks (`video.mp4`, `points/0007.ply`); nil when there is none.
    public func fileSize(id: UUID, path: String) throws -> Int? {
        try pool.withConnection { connection in
            try connection.execute(Queries.fileSizes, [.uuid(id)]).rows.first { try $0.string(0) == path }.map { try $0.int(1) }
        }
    }

    /// Writes bytes `bytes` of a whole-file result to `sink`, reading only the chunks that range covers,
    /// one at a time.
    public func streamFile(id: UUID, path: String, bytes: Range<Int>, sink: (Data) throws -> Void) throws {
        guard !bytes.isEmpty else { return }
        try pool.withConnection(.once) { connection in
            for chunk in (bytes.lowerBound / Self.chunkBytes)...((bytes.upperBound - 1) / Self.chunkBytes) {
                guard let row = try connection.execute(Queries.fileChunk, [.uuid(id), .text(path), .int(chunk)], binaryResults: true).first else {
                    throw PostgresError.decoding("chunk \(chunk) of '\(path)' of job \(id) vanished while streaming")
                }
                let data = try row.data(0)
                let start = chunk * Self.chunkBytes
                let from = max(bytes.lowerBound, start) - start, to = min(bytes.upperBound, start + data.count) - start
                guard from < to else { continue }
                try sink(data.subdata(in: data.startIndex + from..<data.startIndex + to))
            }
        }
    }

    /// Writes bytes `bytes` of the job's `disparity.npy` (laid out by `layout`) to `sink`, reading only the
    /// frames that range covers, one at a time. Offsets are `Int` (64-bit): correct past 4 GB.
    public func streamDisparityArray(id: UUID, layout: FrameLayout, bytes: Range<Int>, sink: (Data) throws -> Void) throws {
        precondition(bytes.lowerBound >= 0 && bytes.upperBound <= layout.npySize, "a range within the file")
        try pool.withConnection(.once) { connection in
            try streamDisparityArray(id: id, layout: layout, bytes: bytes, on: connection, sink: sink)
        }
    }

    private func streamDisparityArray(id: UUID, layout: FrameLayout, bytes: Range<Int>, on connection: PostgresConnection,
                                      sink: (Data) throws -> Void) throws {
        let header = layout.npyHeader
        if bytes.lowerBound < header.count {
            try sink(header[bytes.lowerBound..<min(header.count, bytes.upperBound)])
        }
        let frameBytes = layout.frameBytes
        guard frameBytes > 0, bytes.upperBound > header.count else { return }
        let first = max(0, bytes.lowerBound - header.count) / frameBytes
        let last = (bytes.upperBound - header.count - 1) / frameBytes
        for position in first...last {
            let frame = layout.frames[position]
            guard let row = try connection.execute(Queries.frameDisparity, [.uuid(id), .int(frame.index)], binaryResults: true).first else {
                throw PostgresError.decoding("frame \(frame.index) of job \(id) vanished while streaming")
            }
            let data = try row.data(0)
            guard data.count == frameBytes else { throw PostgresError.decoding("frame \(frame.index) of job \(id) is not \(layout.width)x\(layout.height)") }
            let start = header.count + position * frameBytes
            let from = max(bytes.lowerBound, start) - start, to = min(bytes.upperBound, start + frameBytes) - start
            try sink(data.subdata(in: data.startIndex + from..<data.startIndex + to))
        }
    }

    /// The number of jobs in each status (every status present, zero if none).
    public func statusCounts() throws -> [JobStatus: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, 0) })
        try pool.withConnection { connection in
            for row in try connection.execute(Queries.statusCounts).rows {
                if let status = JobStatus(rawValue: try row.string(0)) { counts[status] = try row.int(1) }
            }
        }
        return counts
    }

    /// The figures that only rise (migration 0005): jobs that reached each terminal state, and the run
    /// times of successful jobs as a cumulative histogram. Deleting jobs or their data leaves them as they are.
    public func counters() throws -> JobCounters {
        try pool.withConnection { connection in
            var finished = Dictionary(uniqueKeysWithValues: JobStatus.terminal.map { ($0, 0) })
            for row in try connection.execute(Queries.finishCounts).rows {
                if let status = JobStatus(rawValue: try row.string(0)) { finished[status] = try row.int(1) }
            }
            var buckets: [JobCounters.Bucket] = []
            var jobs = 0, seconds = 0.0, frames = 0
            for row in try connection.execute(Queries.durationBuckets).rows {
                jobs += try row.int(1)
                seconds += try row.double(2)
                frames += try row.int(3)
                buckets.append(JobCounters.Bucket(upperBound: try row.double(0), cumulativeCount: jobs))
            }
            return JobCounters(finished: finished, durationBuckets: buckets, durationSum: seconds, framesSucceeded: frames)
        }
    }

    /// Throws unless the database answers a trivial query.
    public func ping() throws {
        try pool.withConnection { connection in _ = try connection.execute(Queries.ping) }
    }

    // The cursor is "<created_at in microseconds>_<id>" of the last job of a page: a keyset position,
    // stable while jobs are added or deleted.
    static func encodeCursor(_ job: JobRecord) -> String {
        let micros = Int((job.createdAt.timeIntervalSince1970 * 1_000_000).rounded())
        return "\(micros)_\(job.id.uuidString.lowercased())"
    }

    static func decodeCursor(_ cursor: String) throws -> (Int, UUID) {
        let parts = cursor.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, let micros = Int(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
            throw JobQueueError.invalidCursor(cursor)
        }
        return (micros, id)
    }
}
