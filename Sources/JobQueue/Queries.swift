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

    /// The columns `decodeJob` reads, in its order.
    static let jobColumns = """
        id, status, iters, kernel_size, focal_px, baseline_m, attempt, max_attempts, lease, worker_id,
        frames_done, frames_total, cancel_requested, error_code, error_message, idempotency_key, payload_digest,
        \(micros("created_at")), \(micros("queued_at")), \(micros("run_after")), \(micros("started_at")),
        \(micros("heartbeat_at")), \(micros("lease_expires_at")), \(micros("finished_at")),
        \(micros("results_expired_at"))
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

    /// $1 id, $2 status (queued), $3 iters, $4 kernel size, $5 focal px, $6 baseline m, $7 max attempts,
    /// $8 frames, $9 idempotency key, $10 payload digest. Returns no row when the key exists already.
    static let insertJob = Query(name: "insert_job", sql: """
        INSERT INTO jobs (id, status, iters, kernel_size, focal_px, baseline_m, max_attempts, frames_total,
                          idempotency_key, payload_digest, api_key_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
    /// One statement for both cases: a queued job ends at once ($2 queued -> $3 cancelled); a running one
    /// ($4 running) only gets the flag, which its worker's heartbeat reads. Terminal jobs match nothing.
    static let cancelJob = Query(name: "cancel_job", sql: """
        UPDATE jobs SET
            status = CASE WHEN status = $2 THEN $3 ELSE status END,
            finished_at = CASE WHEN status = $2 THEN now() ELSE finished_at END,
            cancel_requested = true
        WHERE id = $1 AND status IN ($2, $4) AND ($5::uuid IS NULL OR api_key_id = $5::uuid)
        RETURNING \(jobColumns)
        """)
    /// Inputs and results go with it (ON DELETE CASCADE).
    /// $2 the asking API key or NULL.
    static let deleteJob = Query(name: "delete_job", sql: """
        DELETE FROM jobs WHERE id = $1 AND ($2::uuid IS NULL OR api_key_id = $2::uuid) RETURNING id
        """)
    static let resultPaths = Query(name: "result_paths", sql: "SELECT path FROM job_results WHERE job_id = $1 ORDER BY path")
    static let resultData = Query(name: "result_data", sql: "SELECT data FROM job_results WHERE job_id = $1 AND path = $2")
    static let statusCounts = Query(name: "status_counts", sql: "SELECT status, count(*) FROM jobs GROUP BY status")

    // MARK: The worker's side. Every write after the claim is fenced: WHERE id = $1 AND lease = $2.

    /// The claim: one statement, committed on its own, so no transaction stays open while the network runs.
    /// $1 queued, $2 running, $3 worker id, $4 lease seconds.
    static let claimJob = Query(name: "claim_job", sql: """
        UPDATE jobs SET
            status = $2, attempt = attempt + 1, lease = lease + 1, worker_id = $3,
            started_at = now(), heartbeat_at = now(),
            lease_expires_at = now() + make_interval(secs => $4::double precision),
            frames_done = 0
        WHERE id = (
            SELECT id FROM jobs
            WHERE status = $1 AND run_after <= now()
            ORDER BY created_at, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
        RETURNING \(jobColumns)
        """)
    /// Binary results: the PNGs come back as raw bytes.
    static let loadInputs = Query(name: "load_inputs", sql: """
        SELECT frame_index, name, left_png, right_png FROM job_inputs WHERE job_id = $1 ORDER BY frame_index
        """)
    /// $3 lease seconds, $4 frames done. No row back means the lease is lost.
    static let heartbeat = Query(name: "heartbeat", sql: """
        UPDATE jobs SET heartbeat_at = now(),
            lease_expires_at = now() + make_interval(secs => $3::double precision),
            frames_done = $4
        WHERE id = $1 AND lease = $2 AND status = 'running'
        RETURNING cancel_requested
        """)
    /// $3 running, $4 succeeded. Run in a transaction with the result inserts, so results appear exactly
    /// when the job succeeds, and a fenced-out worker's transaction inserts nothing.
    static let succeedJob = Query(name: "succeed_job", sql: """
        UPDATE jobs SET status = $4, finished_at = now(), frames_done = frames_total, lease_expires_at = NULL,
            error_code = NULL, error_message = NULL
        WHERE id = $1 AND lease = $2 AND status = $3
        RETURNING id
        """)
    static let insertResult = Query(name: "insert_result", sql: "INSERT INTO job_results (job_id, path, data) VALUES ($1, $2, $3)")
    /// A terminal move by the lease holder: $3 running, $4 failed or cancelled, $5/$6 error or NULL.
    static let finishJob = Query(name: "finish_job", sql: """
        UPDATE jobs SET status = $4, finished_at = now(), lease_expires_at = NULL,
            error_code = COALESCE($5, error_code), error_message = COALESCE($6, error_message)
        WHERE id = $1 AND lease = $2 AND status = $3
        RETURNING id
        """)
    /// The shared "this attempt is over, try again later" move, used after a worker's error and by the
    /// lease reaper: cancelled if cancellation was requested, failed when the attempts are used up (with
    /// this last error), else queued again after a backoff of min(cap, base * 2^(attempt-1)) seconds.
    /// Seven parameters from `$first`: cancelled, failed, queued, error code, error message, backoff base s,
    /// backoff cap s (see `WorkerQueue.retryParameters`).
    private static func retryAssignments(first: Int, message: String = "") -> String {
        let p = (0..<7).map { "$\(first + $0)" }
        let errorMessage = message.isEmpty ? p[4] : message.replacingOccurrences(of: "MESSAGE", with: p[4])
        return """
            status = CASE WHEN cancel_requested THEN \(p[0]) WHEN attempt >= max_attempts THEN \(p[1]) ELSE \(p[2]) END,
            finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() ELSE NULL END,
            queued_at = now(),
            run_after = now() + make_interval(secs => LEAST(\(p[6])::double precision,
                                                            \(p[5])::double precision * power(2, attempt - 1))),
            lease_expires_at = NULL,
            error_code = \(p[3]), error_message = \(errorMessage)
        """
    }
    /// $1 id, $2 lease, then the retry parameters.
    static let retryJob = Query(name: "retry_job", sql: """
        UPDATE jobs SET \(retryAssignments(first: 3))
        WHERE id = $1 AND lease = $2 AND status = 'running'
        RETURNING status
        """)
    /// `retryJob` for every running job whose lease ran out; the message gets the lost worker's id.
    static let expireLeases = Query(name: "expire_leases", sql: """
        UPDATE jobs SET \(retryAssignments(first: 1, message: "format('%s (worker %s)', MESSAGE::text, COALESCE(worker_id, 'unknown'))"))
        WHERE status = 'running' AND lease_expires_at < now()
        RETURNING id, status
        """)
    /// Retention, one short batch: up to $2 finished jobs whose finish lies more than $1 seconds back lose
    /// their inputs and results and get `results_expired_at`. One statement, so one short transaction;
    /// SKIP LOCKED leaves rows another worker's batch (or an API delete) holds to them.
    static let expireResultsBatch = Query(name: "expire_results_batch", sql: """
        WITH batch AS (
            SELECT id FROM jobs
            WHERE results_expired_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled')
              AND finished_at < now() - make_interval(secs => $1::double precision)
            ORDER BY finished_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
        ), inputs AS (
            DELETE FROM job_inputs WHERE job_id IN (SELECT id FROM batch)
        ), results AS (
            DELETE FROM job_results WHERE job_id IN (SELECT id FROM batch)
        )
        UPDATE jobs SET results_expired_at = now() WHERE id IN (SELECT id FROM batch)
        RETURNING id
        """)

    /// Shutdown: back to queued at once, giving the attempt back; cancelled if that was requested.
    /// $3 cancelled, $4 queued.
    static let handBackJob = Query(name: "hand_back_job", sql: """
        UPDATE jobs SET
            status = CASE WHEN cancel_requested THEN $3 ELSE $4 END,
            finished_at = CASE WHEN cancel_requested THEN now() ELSE NULL END,
            attempt = attempt - 1, queued_at = now(), run_after = now(), lease_expires_at = NULL, frames_done = 0
        WHERE id = $1 AND lease = $2 AND status = 'running'
        RETURNING status
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
    /// The UTC calendar day the daily upload allowance is counted in.
    static let utcToday = "(now() AT TIME ZONE 'UTC')::date"

    /// Locks the key's row until the enqueue transaction ends, so that concurrent submissions by one key
    /// are counted and accounted one after another. $1 key id. Returns its own limits (NULL: the default).
    static let lockAPIKey = Query(name: "lock api key", sql: """
        SELECT max_queued_jobs, max_upload_bytes_per_day FROM api_keys WHERE id = $1 FOR UPDATE
        """)

    /// A key's jobs not yet finished (queued or running). $1 key id.
    static let unfinishedJobsOfKey = Query(name: "unfinished jobs of key", sql: """
        SELECT count(*) FROM jobs WHERE api_key_id = $1 AND status IN ('queued', 'running')
        """)

    /// Adds $2 bytes to key $1's count for today unless that would pass $3 (NULL: no limit). No row when
    /// refused, both for a first upload of the day larger than the limit (nothing to insert) and for one
    /// that would pass it (the conflict update's WHERE fails).
    static let addUploadBytes = Query(name: "add upload bytes", sql: """
        INSERT INTO api_key_uploads AS uploads (api_key_id, day, bytes)
        SELECT $1::uuid, \(utcToday), $2::bigint WHERE $3::bigint IS NULL OR $2::bigint <= $3::bigint
        ON CONFLICT (api_key_id, day) DO UPDATE SET bytes = uploads.bytes + EXCLUDED.bytes
            WHERE $3::bigint IS NULL OR uploads.bytes + EXCLUDED.bytes <= $3::bigint
        RETURNING bytes
        """)

    /// A key's own limits, its unfinished jobs and today's uploaded bytes, without locking: for refusing
    /// an upload before its body is read. $1 key id.
    static let keyUsage = Query(name: "key usage", sql: """
        SELECT max_queued_jobs, max_upload_bytes_per_day,
               (SELECT count(*) FROM jobs WHERE api_key_id = $1 AND status IN ('queued', 'running')),
               coalesce((SELECT bytes FROM api_key_uploads WHERE api_key_id = $1 AND day = \(utcToday)), 0)
        FROM api_keys WHERE id = $1
        """)
}
