// Every SQL statement of the queue, named, in one place. Values are always bound ($n), never spliced in.
import Foundation

/// A named SQL statement; the name appears in errors and logs.
struct Query: Sendable {
    let name: String
    let sql: String
}

enum Queries {
    /// The NOTIFY channel workers LISTEN on; the payload is the job id (ignored: any notice means "look").
    static let channel = "dynstereo_jobs"

    /// A timestamp column as integer microseconds since the Unix epoch (exact: PostgreSQL stores
    /// microseconds), so decoding does not depend on the session's DateStyle or time zone.
    static func micros(_ column: String) -> String {
        "(extract(epoch FROM \(column)) * 1000000)::bigint"
    }

    /// "Now" in a statement: parameter `$n` (`SQLValue.timestamp` of `JobClock.statementTime`, integer
    /// microseconds) when bound, else the database's `now()`. River's `coalesce($n::timestamptz, now())`.
    static func now(_ n: Int) -> String {
        "coalesce('epoch'::timestamptz + $\(n)::bigint * interval '1 microsecond', now())"
    }

    /// The columns `decodeJob` reads, in its order. The timestamps are named, so that a data-modifying CTE
    /// can return them and the statement select them again.
    static let jobColumns = """
        id, status, iters, kernel_size, focal_px, baseline_m, attempt, max_attempts, lease, worker_id,
        frames_done, frames_total, cancel_requested, error_code, error_message, idempotency_key, payload_digest,
        \(micros("created_at")) AS created_us, \(micros("queued_at")) AS queued_us, \(micros("run_after")) AS run_after_us,
        \(micros("started_at")) AS started_us, \(micros("heartbeat_at")) AS heartbeat_us,
        \(micros("lease_expires_at")) AS lease_expires_us, \(micros("finished_at")) AS finished_us,
        \(micros("results_expired_at")) AS results_expired_us, windows_total, \(videoParameterColumns), source, video_rate
        """
    /// How many columns `jobColumns` selects: what follows them in a row starts here.
    static let jobColumnCount = 37

    /// Migration 0007's parameters, in `decodeVideoParameters`' order.
    static let videoParameterColumns = "start_frame, frame_step, frame_count, max_size, fps, cx_px, cy_px, max_depth_m, outputs"

    /// The parameters of a job row: iters, kernel size, focal, baseline at `core`, then `videoParameterColumns` at `video`.
    static func decodeParameters(_ row: Row, core: Int, video: Int) throws -> JobParameters {
        let v = video
        var outputs: Set<ResultKind>?
        if !row.isNull(v + 8) {
            let list = try row.string(v + 8)
            outputs = Set(try list.split(separator: ",").map { name -> ResultKind in
                guard let kind = ResultKind(rawValue: String(name)) else { throw PostgresError.decoding("unknown result kind '\(name)'") }
                return kind
            })
        }
        return JobParameters(iters: try row.int(core), kernelSize: try row.int(core + 1),
                             focalPx: try row.optionalDouble(core + 2), baselineM: try row.optionalDouble(core + 3),
                             selection: FrameSelection(start: try row.int(v), step: try row.int(v + 1),
                                                       count: row.isNull(v + 2) ? nil : try row.int(v + 2)),
                             maxSize: row.isNull(v + 3) ? nil : try row.int(v + 3), fps: try row.optionalDouble(v + 4),
                             cxPx: try row.optionalDouble(v + 5), cyPx: try row.optionalDouble(v + 6),
                             maxDepthM: try row.optionalDouble(v + 7), outputs: outputs)
    }

    /// The values of `videoParameterColumns` for an insert.
    static func videoParameterValues(_ parameters: JobParameters) -> [SQLValue] {
        [.int(parameters.selection.start), .int(parameters.selection.step), parameters.selection.count.map(SQLValue.int) ?? .null,
         parameters.maxSize.map(SQLValue.int) ?? .null, .optional(parameters.fps), .optional(parameters.cxPx),
         .optional(parameters.cyPx), .optional(parameters.maxDepthM),
         .optional(parameters.outputs.map { $0.map(\.rawValue).sorted().joined(separator: ",") })]
    }

    static func decodeJob(_ row: Row) throws -> JobRecord {
        guard let status = JobStatus(rawValue: try row.string(1)) else {
            throw PostgresError.decoding("unknown job status '\(try row.string(1))'")
        }
        let error: JobErrorInfo? = row.isNull(13) ? nil : JobErrorInfo(code: try row.string(13), message: try row.optionalString(14) ?? "")
        return JobRecord(
            id: try row.uuid(0), status: status,
            parameters: try decodeParameters(row, core: 2, video: 26),
            attempt: try row.int(6), maxAttempts: try row.int(7), lease: try row.int(8), workerId: try row.optionalString(9),
            framesDone: try row.int(10), framesTotal: try row.int(11), cancelRequested: try row.bool(12),
            error: error, idempotencyKey: try row.optionalString(15), payloadDigest: try row.optionalString(16),
            createdAt: try row.date(17), queuedAt: try row.date(18), runAfter: try row.date(19),
            startedAt: try row.optionalDate(20), heartbeatAt: try row.optionalDate(21),
            leaseExpiresAt: try row.optionalDate(22), finishedAt: try row.optionalDate(23),
            resultsExpiredAt: try row.optionalDate(24), windowsTotal: row.isNull(25) ? nil : try row.int(25),
            source: JobSource(rawValue: try row.string(35)) ?? .frames, videoRate: try row.string(36))
    }

    // MARK: Jobs with their windows, for the API

    /// Every window of the job `jobs.id` (and its finishing step) as parallel arrays, aggregated in the one
    /// statement that reads the job: a LEFT JOIN LATERAL, so the job's JSON costs one indexed statement
    /// whatever the video's length (the windows are a few rows per hundred frames; no frame row is read).
    /// `decodeWindowArrays` reads the six columns `windowArrayColumns` names. Aggregates without ORDER BY:
    /// the arrays share one pass over the rows, so their elements line up, and the decoder sorts by index.
    static let windowArraysJoin = """
        LEFT JOIN LATERAL (
            SELECT array_agg(ARRAY[w.window_index, w.first_frame, w.frames, w.result_first, w.result_end, w.attempt,
                                   w.iterations_done, coalesce(w.iterations_total, -1)]) AS window_numbers,
                   array_agg(w.kind) AS window_kinds, array_agg(w.status) AS window_statuses,
                   array_agg(w.worker_id) AS window_workers, array_agg(w.error_code) AS window_error_codes,
                   array_agg(w.error_message) AS window_error_messages
            FROM job_windows AS w WHERE w.job_id = jobs.id
        ) AS job_window_arrays ON true
        """
    static let windowArrayColumns = """
        window_numbers, window_kinds, window_statuses, window_workers, window_error_codes, window_error_messages
        """
    /// How many columns `windowArrayColumns` selects.
    static let windowArrayColumnCount = 6

    /// The windows `windowArraysJoin` aggregated, from column `first` on, sorted by index (none for a job
    /// stored before windows).
    static func decodeWindowArrays(_ row: Row, from first: Int) throws -> [JobWindow] {
        let numbers = try row.integers(first)
        let kinds = try row.textArray(first + 1), statuses = try row.textArray(first + 2)
        let workers = try row.textArray(first + 3), codes = try row.textArray(first + 4), messages = try row.textArray(first + 5)
        let count = kinds.count
        guard numbers.count == 8 * count, [statuses, workers, codes, messages].allSatisfy({ $0.count == count }) else {
            throw PostgresError.decoding("window arrays of different lengths")
        }
        return try (0..<count).map { i -> JobWindow in
            let n = numbers[(8 * i)..<(8 * i + 8)].map { $0 }
            guard let kind = kinds[i].flatMap(JobWindow.Kind.init(rawValue:)), let status = statuses[i].flatMap(JobStatus.init(rawValue:)),
                  n[2] >= 0, n[4] >= n[3] else {
                throw PostgresError.decoding("window kind '\(kinds[i] ?? "NULL")', status '\(statuses[i] ?? "NULL")' or frames \(n)")
            }
            return JobWindow(index: n[0], kind: kind, inputFrames: n[1]..<(n[1] + n[2]), resultFrames: n[3]..<n[4], status: status,
                             attempt: n[5], workerId: workers[i], iterationsDone: n[6], iterationsTotal: n[7] < 0 ? nil : n[7],
                             error: codes[i].map { JobErrorInfo(code: $0, message: messages[i] ?? "") })
        }.sorted { $0.index < $1.index }
    }

    /// The frames' names at `column`, after the window arrays: `frame_names` itself (`jobReport`), or only
    /// whether it is set (`listJobs`, `namesRead` false).
    static func decodeFrameNames(_ row: Row, at column: Int, namesRead: Bool) throws -> FrameNames {
        guard namesRead else { return try row.bool(column) ? .ownUnread : .sourceIndices }
        guard !row.isNull(column) else { return .sourceIndices }
        return .own(try row.textArray(column).map { name in
            guard let name else { throw PostgresError.decoding("a NULL among a job's frame names") }
            return name
        })
    }

    // MARK: Sessions and transactions

    static let begin = Query(name: "begin", sql: "BEGIN")
    static let commit = Query(name: "commit", sql: "COMMIT")
    static let rollback = Query(name: "rollback", sql: "ROLLBACK")
    static let ping = Query(name: "ping", sql: "SELECT 1")
    /// Static text run as a script: LISTEN takes no parameters.
    static let listen = "LISTEN \(channel)"
    /// The channels of migration 0010's triggers: a job's id on every write to its row or its windows, and an
    /// empty payload on every write to the API keys.
    static let jobChangesChannel = "dynstereo_job_changes"
    static let keyChangesChannel = "dynstereo_key_changes"
    static let listenForChanges = "LISTEN \(jobChangesChannel); LISTEN \(keyChangesChannel)"

    // MARK: Migrations

    static let createMigrationsTable = Query(name: "create_migrations_table", sql: """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """)
    /// Session-level, so it spans the per-migration transactions; $1 is `Migrator.lockKey`.
    static let migrationLock = Query(name: "migration_lock", sql: "SELECT pg_advisory_lock($1::bigint)")
    static let migrationUnlock = Query(name: "migration_unlock", sql: "SELECT pg_advisory_unlock($1::bigint)")
    static let appliedMigrations = Query(name: "applied_migrations", sql: "SELECT version FROM schema_migrations ORDER BY version")
    static let recordMigration = Query(name: "record_migration", sql: "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")

    // MARK: The API's side

    /// $1 id, $2 status (`JobStatus.initial`), $3 iters, $4 kernel size, $5 focal px, $6 baseline m,
    /// $7 max attempts, $8 frames, $9 idempotency key, $10 payload digest, $11 API key, $12 now,
    /// $13...$21 `videoParameterValues`, $22 source, $23 video rate.
    /// Returns no row when the key exists already.
    static let insertJob = Query(name: "insert_job", sql: """
        INSERT INTO jobs (id, status, iters, kernel_size, focal_px, baseline_m, max_attempts, frames_total,
                          idempotency_key, payload_digest, api_key_id, created_at, queued_at, run_after,
                          \(videoParameterColumns), source, video_rate)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \(now(12)), \(now(12)), \(now(12)),
                $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
        ON CONFLICT (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING \(jobColumns)
        """)
    static let insertInput = Query(name: "insert_input", sql: """
        INSERT INTO job_inputs (job_id, frame_index, name, left_png, right_png) VALUES ($1, $2, $3, $4, $5)
        """)
    /// The job's frames' own names, by index (`FrameNames.toStore`), once its inputs are stored. $1 id, $2 names.
    static let setFrameNames = Query(name: "set_frame_names", sql: "UPDATE jobs SET frame_names = $2::text[] WHERE id = $1")
    /// Delivered at commit, so a worker woken by it always finds the job.
    static let notifyWorkers = Query(name: "notify_workers", sql: "SELECT pg_notify('\(channel)', $1)")
    /// $2 the asking API key, or NULL for no ownership check (an open server, the workers).
    static let jobByID = Query(name: "job_by_id", sql: """
        SELECT \(jobColumns) FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR api_key_id = $2::uuid)
        """)
    /// $1 the idempotency key, $2 the asking API key or NULL: keys are scoped per API key (migration 0003).
    static let jobByIdempotencyKey = Query(name: "job_by_idempotency_key", sql: """
        SELECT \(jobColumns) FROM jobs WHERE idempotency_key = $1 AND api_key_id IS NOT DISTINCT FROM $2::uuid
        """)
    /// `jobByID` with the job's windows (`windowArraysJoin`) and its frames' own names (migration 0009, NULL
    /// for most jobs): the API's job view in one statement.
    static let jobReport = Query(name: "job_report", sql: """
        SELECT \(jobColumns), \(windowArrayColumns), frame_names FROM jobs \(windowArraysJoin)
        WHERE id = $1 AND ($2::uuid IS NULL OR api_key_id = $2::uuid)
        """)
    /// Newest first, each job with its windows (`windowArraysJoin`, run only for the rows the limit keeps),
    /// and whether its frames have names of their own (not the names: they grow with the video).
    /// $1 status or NULL; $2, $3 the cursor (created_at in microseconds, id) or NULL; $4 limit; $5 the asking
    /// API key or NULL.
    static let listJobs = Query(name: "list_jobs", sql: """
        SELECT \(jobColumns), \(windowArrayColumns), frame_names IS NOT NULL FROM jobs \(windowArraysJoin)
        WHERE ($1::text IS NULL OR status = $1::text)
          AND ($5::uuid IS NULL OR api_key_id = $5::uuid)
          AND ($2::bigint IS NULL
               OR (created_at, id) < ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $4
        """)
    /// A cancel's first step: the job's queued windows end at once, locked in window order. $1 job,
    /// $2 `cancelQueued.from`, $3 `cancelQueued.to`, $4 the asking API key or NULL, $5 now, $6 `JobStatus.unfinished`.
    static let cancelQueuedWindows = Query(name: "cancel_queued_windows", sql: """
        WITH locked AS (
            SELECT w.window_index FROM job_windows AS w
            WHERE w.job_id = $1 AND w.status = $2 AND EXISTS (
                SELECT 1 FROM jobs WHERE id = $1 AND status = ANY($6::text[]) AND ($4::uuid IS NULL OR api_key_id = $4::uuid))
            ORDER BY w.window_index
            FOR UPDATE
        )
        UPDATE job_windows AS w SET status = $3, finished_at = \(now(5))
        FROM locked AS l
        WHERE w.job_id = $1 AND w.window_index = l.window_index
        """)
    /// Its second: the flag that running windows' heartbeats read (the job's status then follows from its
    /// windows). Terminal jobs match nothing. $1 job, $2 the asking API key or NULL, $3 `JobStatus.unfinished`.
    static let requestCancel = Query(name: "request_cancel", sql: """
        UPDATE jobs SET cancel_requested = true
        WHERE id = $1 AND status = ANY($3::text[]) AND ($2::uuid IS NULL OR api_key_id = $2::uuid)
        RETURNING id
        """)
    /// Inputs and results go with it (ON DELETE CASCADE); the counters of migration 0005 stay.
    /// $2 the asking API key or NULL.
    static let deleteJob = Query(name: "delete_job", sql: """
        DELETE FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR api_key_id = $2::uuid) RETURNING id
        """)
    /// The files of a job stored before migration 0006 (one row per file).
    static let resultPaths = Query(name: "result_paths", sql: "SELECT path FROM job_results WHERE job_id = $1 ORDER BY path")
    static let resultData = Query(name: "result_data", sql: "SELECT data FROM job_results WHERE job_id = $1 AND path = $2")
    static let statusCounts = Query(name: "status_counts", sql: "SELECT status, count(*) FROM jobs GROUP BY status")
    /// Migration 0005's counters: jobs that reached each terminal state, ever.
    static let finishCounts = Query(name: "finish_counts", sql: "SELECT status, total FROM job_finishes")
    /// Migration 0005's duration buckets, smallest bound first (the last one is 'Infinity').
    static let durationBuckets = Query(name: "duration_buckets", sql: """
        SELECT le::text AS upper_bound, jobs, seconds, frames FROM job_durations ORDER BY le
        """)

    // MARK: The worker's side: the windows' statements are in WindowQueries.swift.

    /// Retention, first step, one short batch: up to $2 jobs in a state of $3 (`JobStatus.terminal`) whose
    /// finish lies more than $1 seconds before now ($4) get `results_expired_at` (from then on their result
    /// routes answer 410) and are marked for the purge, which deletes their rows in batches of rows. SKIP
    /// LOCKED leaves jobs another worker's batch (or an API delete) holds.
    static let expireResultsBatch = Query(name: "expire_results_batch", sql: """
        WITH batch AS (
            SELECT id FROM jobs
            WHERE results_expired_at IS NULL AND status = ANY($3::text[])
              AND finished_at < \(now(4)) - make_interval(secs => $1::double precision)
            ORDER BY finished_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        )
        UPDATE jobs SET results_expired_at = \(now(4)), purge_pending = true WHERE id IN (SELECT id FROM batch)
        RETURNING id
        """)
    /// Retention, second step: deletes up to $1 rows of `table` (keyed by `key`) belonging to jobs marked for
    /// the purge: one short transaction whatever a video's length. Rows another worker is deleting are skipped.
    static func purgeRows(_ table: String, key: String) -> Query {
        Query(name: "purge_\(table)", sql: """
            WITH doomed AS (
                SELECT t.job_id, t.\(key) FROM \(table) AS t
                WHERE t.job_id IN (SELECT id FROM jobs WHERE purge_pending)
                LIMIT $1
                FOR UPDATE OF t SKIP LOCKED
            )
            DELETE FROM \(table) AS t USING doomed AS d WHERE t.job_id = d.job_id AND t.\(key) = d.\(key)
            RETURNING t.job_id
            """)
    }
    /// The tables the purge empties, with the column that keys a row within its job.
    static let purgedTables = [(table: "job_frames", key: "frame_index"), (table: "job_inputs", key: "frame_index"),
                               (table: "job_results", key: "path"), (table: "job_files", key: "id"), (table: "job_uploads", key: "id")]
    /// Jobs marked for the purge whose rows are all gone are done.
    static let finishPurge = Query(name: "finish_purge", sql: """
        UPDATE jobs AS j SET purge_pending = false
        WHERE j.purge_pending
          AND NOT EXISTS (SELECT 1 FROM job_frames WHERE job_id = j.id)
          AND NOT EXISTS (SELECT 1 FROM job_inputs WHERE job_id = j.id)
          AND NOT EXISTS (SELECT 1 FROM job_results WHERE job_id = j.id)
          AND NOT EXISTS (SELECT 1 FROM job_files WHERE job_id = j.id)
          AND NOT EXISTS (SELECT 1 FROM job_uploads WHERE job_id = j.id)
        RETURNING j.id
        """)
}

// MARK: API keys

extension Queries {
    /// The columns `decodeAPIKey` reads, in its order.
    static let apiKeyColumns = """
        id, name, max_queued_jobs, max_upload_bytes_per_day, \(micros("created_at")), \(micros("revoked_at"))
        """

    static func decodeAPIKey(_ row: Row) throws -> APIKeyRecord {
        APIKeyRecord(id: try row.uuid(0), name: try row.string(1),
                     maxQueuedJobs: row.isNull(2) ? nil : try row.int(2),
                     maxUploadBytesPerDay: row.isNull(3) ? nil : try row.int(3),
                     createdAt: try row.date(4), revokedAt: try row.optionalDate(5))
    }

    /// $1 id, $2 name, $3 SHA-256 hex, $4 max queued jobs, $5 max upload bytes per day. No row when the
    /// name (or, astronomically unlikely, the hash) is taken.
    static let insertAPIKey = Query(name: "insert api key", sql: """
        INSERT INTO api_keys (id, name, key_sha256, max_queued_jobs, max_upload_bytes_per_day)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT DO NOTHING
        RETURNING \(apiKeyColumns)
        """)

    static let listAPIKeys = Query(name: "list api keys", sql: """
        SELECT \(apiKeyColumns) FROM api_keys ORDER BY created_at, name
        """)

    /// $1 name, $2 id (or NULL). Keeps the first revocation time of a key revoked twice.
    static let revokeAPIKey = Query(name: "revoke api key", sql: """
        UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
        WHERE name = $1 OR id = $2
        RETURNING \(apiKeyColumns)
        """)

    /// $1 SHA-256 hex of a presented key.
    static let apiKeyByHash = Query(name: "api key by hash", sql: """
        SELECT \(apiKeyColumns) FROM api_keys WHERE key_sha256 = $1
        """)

    static let anyAPIKey = Query(name: "any api key", sql: "SELECT EXISTS (SELECT 1 FROM api_keys)")
}

// MARK: Per-key limits

extension Queries {
    /// The UTC calendar day the daily upload allowance is counted in, of now (parameter `$n`, see `now`).
    static func utcToday(_ n: Int) -> String { "(\(now(n)) AT TIME ZONE 'UTC')::date" }

    /// Locks the key's row until the enqueue transaction ends, so that concurrent submissions by one key
    /// are counted and accounted one after another. $1 key id. Returns its own limits (NULL: the default).
    static let lockAPIKey = Query(name: "lock api key", sql: """
        SELECT max_queued_jobs, max_upload_bytes_per_day FROM api_keys WHERE id = $1 FOR UPDATE
        """)

    /// A key's jobs not yet finished. $1 key id, $2 `JobStatus.unfinished`.
    static let unfinishedJobsOfKey = Query(name: "unfinished jobs of key", sql: """
        SELECT count(*) FROM jobs WHERE api_key_id = $1 AND status = ANY($2::text[])
        """)

    /// Adds $2 bytes to key $1's count for today ($4 now) unless that would pass $3 (NULL: no limit). No row when
    /// refused, both for a first upload of the day larger than the limit (nothing to insert) and for one
    /// that would pass it (the conflict update's WHERE fails).
    static let addUploadBytes = Query(name: "add upload bytes", sql: """
        INSERT INTO api_key_uploads AS uploads (api_key_id, day, bytes)
        SELECT $1::uuid, \(utcToday(4)), $2::bigint WHERE $3::bigint IS NULL OR $2::bigint <= $3::bigint
        ON CONFLICT (api_key_id, day) DO UPDATE SET bytes = uploads.bytes + EXCLUDED.bytes
            WHERE $3::bigint IS NULL OR uploads.bytes + EXCLUDED.bytes <= $3::bigint
        RETURNING bytes
        """)

    /// A key's own limits, its unfinished jobs and today's uploaded bytes, without locking: for refusing
    /// an upload before its body is read. $1 key id, $2 `JobStatus.unfinished`, $3 now.
    static let keyUsage = Query(name: "key usage", sql: """
        SELECT max_queued_jobs, max_upload_bytes_per_day,
               (SELECT count(*) FROM jobs WHERE api_key_id = $1 AND status = ANY($2::text[])),
               coalesce((SELECT bytes FROM api_key_uploads WHERE api_key_id = $1 AND day = \(utcToday(3))), 0)
        FROM api_keys WHERE id = $1
        """)
}
