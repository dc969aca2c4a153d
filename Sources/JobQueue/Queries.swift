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
        \(micros("results_expired_at")) AS results_expired_us
        """

    static func decodeJob(_ row: Row) throws -> JobRecord {
        guard let status = JobStatus(rawValue: try row.string(1)) else {
            throw PostgresError.decoding("unknown job status '\(try row.string(1))'")
        }
        let error: JobErrorInfo? = row.isNull(13) ? nil : JobErrorInfo(code: try row.string(13), message: try row.optionalString(14) ?? "")
        return JobRecord(
            id: try row.uuid(0), status: status,
            parameters: JobParameters(iters: try row.int(2), kernelSize: try row.int(3),
                                      focalPx: try row.optionalDouble(4), baselineM: try row.optionalDouble(5)),
            attempt: try row.int(6), maxAttempts: try row.int(7), lease: try row.int(8), workerId: try row.optionalString(9),
            framesDone: try row.int(10), framesTotal: try row.int(11), cancelRequested: try row.bool(12),
            error: error, idempotencyKey: try row.optionalString(15), payloadDigest: try row.optionalString(16),
            createdAt: try row.date(17), queuedAt: try row.date(18), runAfter: try row.date(19),
            startedAt: try row.optionalDate(20), heartbeatAt: try row.optionalDate(21),
            leaseExpiresAt: try row.optionalDate(22), finishedAt: try row.optionalDate(23),
            resultsExpiredAt: try row.optionalDate(24))
    }

    /// A CTE (after a data-modifying CTE `moved` that returns `status`) adding each job that `moved` took to
    /// a terminal state to that state's total in `job_finishes` (migration 0005). Only terminal states have
    /// a row there, so moves to `queued` or `running` count nowhere. It runs whether or not it is read, in
    /// the statement (and so the transaction) that makes the move.
    static let countFinishes = """
        counted AS (
            UPDATE job_finishes AS f SET total = f.total + m.jobs
            FROM (SELECT status, count(*) AS jobs FROM moved GROUP BY status) AS m
            WHERE f.status = m.status)
        """

    // MARK: Sessions and transactions

    static let begin = Query(name: "begin", sql: "BEGIN")
    static let commit = Query(name: "commit", sql: "COMMIT")
    static let rollback = Query(name: "rollback", sql: "ROLLBACK")
    static let ping = Query(name: "ping", sql: "SELECT 1")
    /// Static text run as a script: LISTEN takes no parameters.
    static let listen = "LISTEN \(channel)"

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
    /// $7 max attempts, $8 frames, $9 idempotency key, $10 payload digest, $11 API key, $12 now.
    /// Returns no row when the key exists already.
    static let insertJob = Query(name: "insert_job", sql: """
        INSERT INTO jobs (id, status, iters, kernel_size, focal_px, baseline_m, max_attempts, frames_total,
                          idempotency_key, payload_digest, api_key_id, created_at, queued_at, run_after)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \(now(12)), \(now(12)), \(now(12)))
        ON CONFLICT (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING \(jobColumns)
        """)
    static let insertInput = Query(name: "insert_input", sql: """
        INSERT INTO job_inputs (job_id, frame_index, name, left_png, right_png) VALUES ($1, $2, $3, $4, $5)
        """)
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
    /// Newest first. $1 status or NULL; $2, $3 the cursor (created_at in microseconds, id) or NULL; $4 limit;
    /// $5 the asking API key or NULL.
    static let listJobs = Query(name: "list_jobs", sql: """
        SELECT \(jobColumns) FROM jobs
        WHERE ($1::text IS NULL OR status = $1::text)
          AND ($5::uuid IS NULL OR api_key_id = $5::uuid)
          AND ($2::bigint IS NULL
               OR (created_at, id) < ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $4
        """)
    /// One statement for both cases: a queued job ends at once ($2 `cancelQueued.from` -> $3 `cancelQueued.to`);
    /// a running one ($4 `cancelRunning.from`) only gets the flag, which its worker's heartbeat reads.
    /// Terminal jobs match nothing. $5 the asking API key or NULL, $6 now.
    static let cancelJob = Query(name: "cancel_job", sql: """
        WITH moved AS (
            UPDATE jobs SET
                status = CASE WHEN status = $2 THEN $3 ELSE status END,
                finished_at = CASE WHEN status = $2 THEN \(now(6)) ELSE finished_at END,
                cancel_requested = true
            WHERE id = $1 AND status IN ($2, $4) AND ($5::uuid IS NULL OR api_key_id = $5::uuid)
            RETURNING \(jobColumns)
        ), \(countFinishes)
        SELECT * FROM moved
        """)
    /// Inputs and results go with it (ON DELETE CASCADE); the counters of migration 0005 stay.
    /// $2 the asking API key or NULL.
    static let deleteJob = Query(name: "delete_job", sql: """
        DELETE FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR api_key_id = $2::uuid) RETURNING id
        """)
    static let resultPaths = Query(name: "result_paths", sql: "SELECT path FROM job_results WHERE job_id = $1 ORDER BY path")
    static let resultData = Query(name: "result_data", sql: "SELECT data FROM job_results WHERE job_id = $1 AND path = $2")
    static let statusCounts = Query(name: "status_counts", sql: "SELECT status, count(*) FROM jobs GROUP BY status")
    /// Migration 0005's counters: jobs that reached each terminal state, ever.
    static let finishCounts = Query(name: "finish_counts", sql: "SELECT status, total FROM job_finishes")
    /// Migration 0005's duration buckets, smallest bound first (the last one is 'Infinity').
    static let durationBuckets = Query(name: "duration_buckets", sql: """
        SELECT le::text AS upper_bound, jobs, seconds, frames FROM job_durations ORDER BY le
        """)

    // MARK: The worker's side. Every write after the claim is fenced: WHERE id = $1 AND lease = $2.

    /// The claim: one statement, committed on its own, so no transaction stays open while the network runs.
    /// $1 `claim.from`, $2 `claim.to`, $3 worker id, $4 lease seconds, $5 now.
    static let claimJob = Query(name: "claim_job", sql: """
        UPDATE jobs SET
            status = $2, attempt = attempt + 1, lease = lease + 1, worker_id = $3,
            started_at = \(now(5)), heartbeat_at = \(now(5)),
            lease_expires_at = \(now(5)) + make_interval(secs => $4::double precision),
            frames_done = 0
        WHERE id = (
            SELECT id FROM jobs
            WHERE status = $1 AND run_after <= \(now(5))
            ORDER BY created_at, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
        RETURNING \(jobColumns)
        """)
    /// Binary results: the PNGs come back as raw bytes.
    static let loadInputs = Query(name: "load_inputs", sql: """
        SELECT frame_index, name, left_png, right_png FROM job_inputs WHERE job_id = $1 ORDER BY frame_index
        """)
    /// $3 lease seconds, $4 frames done, $5 `claim.to` (the state a lease holder's job is in), $6 now.
    /// No row back means the lease is lost.
    static let heartbeat = Query(name: "heartbeat", sql: """
        UPDATE jobs SET heartbeat_at = \(now(6)),
            lease_expires_at = \(now(6)) + make_interval(secs => $3::double precision),
            frames_done = $4
        WHERE id = $1 AND lease = $2 AND status = $5
        RETURNING cancel_requested
        """)
    /// The job's status if `lease` ($2) is still its lease: how a worker whose write may or may not have
    /// committed (its session died at COMMIT) recognises its own finished move.
    static let fencedStatus = Query(name: "fenced_status", sql: "SELECT status FROM jobs WHERE id = $1 AND lease = $2")
    /// The start of the success transaction: locks the job row and reads whether `lease` ($2) still holds it.
    static let lockFencedJob = Query(name: "lock_fenced_job", sql: "SELECT status FROM jobs WHERE id = $1 AND lease = $2 FOR UPDATE")
    /// $3 `succeed.from`, $4 `succeed.to`, $5 now. The last statement of the success transaction, after the
    /// result inserts, so results appear exactly when the job succeeds and the counter rows it adds to
    /// (its finish, and its run time's duration bucket) stay locked only until the COMMIT that follows.
    static let succeedJob = Query(name: "succeed_job", sql: """
        WITH moved AS (
            UPDATE jobs SET status = $4, finished_at = \(now(5)), frames_done = frames_total, lease_expires_at = NULL,
                error_code = NULL, error_message = NULL
            WHERE id = $1 AND lease = $2 AND status = $3
            RETURNING id, status, started_at, finished_at, frames_total
        ), \(countFinishes), timed AS (
            UPDATE job_durations AS b SET jobs = b.jobs + 1, seconds = b.seconds + d.seconds, frames = b.frames + d.frames
            FROM (SELECT greatest(0, extract(epoch FROM finished_at - started_at))::double precision AS seconds,
                         frames_total AS frames
                  FROM moved) AS d
            WHERE b.le = (SELECT min(le) FROM job_durations WHERE le >= d.seconds))
        SELECT id FROM moved
        """)
    static let insertResult = Query(name: "insert_result", sql: "INSERT INTO job_results (job_id, path, data) VALUES ($1, $2, $3)")
    /// A terminal move by the lease holder: $3 `from`, $4 `to` (of `fail` or `cancelRunning`), $5/$6 error
    /// or NULL, $7 now.
    static let finishJob = Query(name: "finish_job", sql: """
        WITH moved AS (
            UPDATE jobs SET status = $4, finished_at = \(now(7)), lease_expires_at = NULL,
                error_code = COALESCE($5, error_code), error_message = COALESCE($6, error_message)
            WHERE id = $1 AND lease = $2 AND status = $3
            RETURNING id, status
        ), \(countFinishes)
        SELECT id FROM moved
        """)
    /// The number of parameters `retryAssignments` takes.
    static let retryParameterCount = 8
    /// The shared "this attempt is over, try again later" move, used after a worker's error and by the
    /// lease reaper: cancelled if cancellation was requested, failed when the attempts are used up (with
    /// this last error), else queued again after a backoff of min(cap, base * 2^(attempt-1)) seconds.
    /// Eight parameters from `$first`: cancelled, failed, queued (the targets of `cancelRunning`, `fail` and
    /// `retry`), error code, error message, backoff base s, backoff cap s, now (see `WorkerQueue.retryParameters`).
    private static func retryAssignments(first: Int, message: String = "") -> String {
        let p = (0..<retryParameterCount).map { "$\(first + $0)" }
        let errorMessage = message.isEmpty ? p[4] : message.replacingOccurrences(of: "MESSAGE", with: p[4])
        return """
            status = CASE WHEN cancel_requested THEN \(p[0]) WHEN attempt >= max_attempts THEN \(p[1]) ELSE \(p[2]) END,
            finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN \(now(first + 7)) ELSE NULL END,
            queued_at = \(now(first + 7)),
            run_after = \(now(first + 7)) + make_interval(secs => LEAST(\(p[6])::double precision,
                                                                        \(p[5])::double precision * power(2, attempt - 1))),
            lease_expires_at = NULL,
            error_code = \(p[3]), error_message = \(errorMessage)
        """
    }
    /// $1 id, $2 lease, $3...$10 the retry parameters, $11 `retry.from`.
    static let retryJob = Query(name: "retry_job", sql: """
        WITH moved AS (
            UPDATE jobs SET \(retryAssignments(first: 3))
            WHERE id = $1 AND lease = $2 AND status = $11
            RETURNING id, status
        ), \(countFinishes)
        SELECT status FROM moved
        """)
    /// `retryJob` for every job in $9 (`retry.from`) whose lease ran out before now ($8); the message gets
    /// the lost worker's id.
    static let expireLeases = Query(name: "expire_leases", sql: """
        WITH moved AS (
            UPDATE jobs SET \(retryAssignments(first: 1, message: "format('%s (worker %s)', MESSAGE::text, COALESCE(worker_id, 'unknown'))"))
            WHERE status = $9 AND lease_expires_at < \(now(8))
            RETURNING id, status
        ), \(countFinishes)
        SELECT id, status FROM moved
        """)
    /// Retention, one short batch: up to $2 jobs in a state of $3 (`JobStatus.terminal`) whose finish lies
    /// more than $1 seconds before now ($4) lose their inputs and results and get `results_expired_at`. One
    /// statement, so one short transaction; SKIP LOCKED leaves rows another worker's batch (or an API
    /// delete) holds to them.
    static let expireResultsBatch = Query(name: "expire_results_batch", sql: """
        WITH batch AS (
            SELECT id FROM jobs
            WHERE results_expired_at IS NULL AND status = ANY($3::text[])
              AND finished_at < \(now(4)) - make_interval(secs => $1::double precision)
            ORDER BY finished_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        ), inputs AS (
            DELETE FROM job_inputs WHERE job_id IN (SELECT id FROM batch)
        ), results AS (
            DELETE FROM job_results WHERE job_id IN (SELECT id FROM batch)
        )
        UPDATE jobs SET results_expired_at = \(now(4)) WHERE id IN (SELECT id FROM batch)
        RETURNING id
        """)

    /// Shutdown: back to queued at once, giving the attempt back; cancelled if that was requested.
    /// $3 `cancelRunning.to`, $4 `handBack.to`, $5 `handBack.from`, $6 now.
    static let handBackJob = Query(name: "hand_back_job", sql: """
        WITH moved AS (
            UPDATE jobs SET
                status = CASE WHEN cancel_requested THEN $3 ELSE $4 END,
                finished_at = CASE WHEN cancel_requested THEN \(now(6)) ELSE NULL END,
                attempt = attempt - 1, queued_at = \(now(6)), run_after = \(now(6)), lease_expires_at = NULL, frames_done = 0
            WHERE id = $1 AND lease = $2 AND status = $5
            RETURNING id, status
        ), \(countFinishes)
        SELECT status FROM moved
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
