// The SQL of migrations/*.sql, embedded so the binary migrates without the source tree.
// MigrationFileTests checks that every text here equals its file byte for byte: edit both together.

/// One numbered schema change.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
}

/// Every migration, in the order they are applied.
public enum Migrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "jobs", sql: #"""
-- Jobs, their input frames and their result files. Frames and results are bytea rows of their own
-- tables so that listing and claiming jobs never reads video data.
CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    status           text NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    iters            integer NOT NULL CHECK (iters BETWEEN 2 AND 100),
    kernel_size      integer NOT NULL CHECK (kernel_size BETWEEN 2 AND 64),
    focal_px         double precision CHECK (focal_px > 0),
    baseline_m       double precision CHECK (baseline_m > 0),
    -- Attempts spent, and the limit after which a failing job stays failed.
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    -- Fencing token: every claim increments it; every write by a worker must present it.
    lease            bigint NOT NULL DEFAULT 0,
    worker_id        text,
    heartbeat_at     timestamptz,
    lease_expires_at timestamptz,
    -- Backoff: a queued job is not claimed before this time.
    run_after        timestamptz NOT NULL DEFAULT now(),
    frames_done      integer NOT NULL DEFAULT 0,
    frames_total     integer NOT NULL CHECK (frames_total >= 1),
    error_code       text,
    error_message    text,
    cancel_requested boolean NOT NULL DEFAULT false,
    idempotency_key  text UNIQUE,
    payload_digest   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    queued_at        timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);

-- The claim query's scan: oldest claimable job first.
CREATE INDEX jobs_claimable ON jobs (created_at, id) WHERE status = 'queued';
-- The lease reaper's scan.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';
-- Listing, newest first, with a keyset cursor.
CREATE INDEX jobs_newest ON jobs (created_at DESC, id DESC);

CREATE TABLE job_inputs (
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    frame_index integer NOT NULL CHECK (frame_index >= 0),
    name        text NOT NULL,
    left_png    bytea NOT NULL,
    right_png   bytea NOT NULL,
    PRIMARY KEY (job_id, frame_index)
);

CREATE TABLE job_results (
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    path   text NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (job_id, path)
);

"""#),
        Migration(version: 2, name: "api_keys", sql: #"""
-- API keys: only each key's SHA-256 is stored, as lowercase hex; the key itself is shown once at creation.
-- Limits left NULL fall back to the server's defaults. Jobs record the key that created them (NULL when the
-- server ran open), and each key's uploaded bytes are summed per UTC day for the daily upload limit.
CREATE TABLE api_keys (
    id                        uuid PRIMARY KEY,
    name                      text NOT NULL UNIQUE CHECK (name <> ''),
    key_sha256                text NOT NULL UNIQUE CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
    max_queued_jobs           integer CHECK (max_queued_jobs > 0),
    max_upload_bytes_per_day  bigint CHECK (max_upload_bytes_per_day > 0),
    created_at                timestamptz NOT NULL DEFAULT now(),
    revoked_at                timestamptz
);

ALTER TABLE jobs ADD COLUMN api_key_id uuid REFERENCES api_keys (id);
CREATE INDEX jobs_api_key_created ON jobs (api_key_id, created_at DESC, id DESC);

CREATE TABLE api_key_uploads (
    api_key_id  uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day         date NOT NULL,
    bytes       bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    PRIMARY KEY (api_key_id, day)
);

"""#),
        Migration(version: 3, name: "idempotency_per_key", sql: #"""
-- Idempotency keys are scoped to the API key that sent them: two clients that pick the same
-- Idempotency-Key never meet, and a clash can only ever name the client's own job. Jobs of an open server
-- (api_key_id NULL) share one scope, hence NULLS NOT DISTINCT.
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (api_key_id, idempotency_key) NULLS NOT DISTINCT
    WHERE idempotency_key IS NOT NULL;

-- The per-key limit on jobs queued at once counts a key's unfinished jobs on every submission.
CREATE INDEX jobs_api_key_unfinished ON jobs (api_key_id) WHERE status IN ('queued', 'running');

"""#),
        Migration(version: 4, name: "retention", sql: #"""
-- Retention: the workers' maintenance deletes the input frames and result files of jobs that finished
-- long enough ago, and records when on the job row, which stays (its status and error too).
ALTER TABLE jobs ADD COLUMN results_expired_at timestamptz;

-- The maintenance's scan: finished jobs whose data is still stored, oldest finish first.
CREATE INDEX jobs_retention ON jobs (finished_at)
    WHERE results_expired_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled');

"""#),
        Migration(version: 5, name: "job_counters", sql: #"""
-- Figures for /metrics that only rise. Each move of a job to a terminal state adds one to that state's
-- total, and each success adds its run time to a duration bucket, in the statement that makes the move (so
-- in its transaction). Deleting a job or expiring its data changes neither, and every API process reads the
-- same figures, whichever worker made the moves.
CREATE TABLE job_finishes (
    status text PRIMARY KEY CHECK (status IN ('succeeded', 'failed', 'cancelled')),
    total  bigint NOT NULL DEFAULT 0 CHECK (total >= 0)
);

-- The run time of successful jobs (their last attempt), one row per histogram bucket: `jobs` counts the jobs
-- whose run time lies in (the previous bound, le], `seconds` and `frames` sum their run times and frames.
-- /metrics adds the rows up into Prometheus's cumulative buckets. The bounds are written here only.
CREATE TABLE job_durations (
    le      double precision PRIMARY KEY CHECK (le > 0),
    jobs    bigint NOT NULL DEFAULT 0 CHECK (jobs >= 0),
    seconds double precision NOT NULL DEFAULT 0 CHECK (seconds >= 0),
    frames  bigint NOT NULL DEFAULT 0 CHECK (frames >= 0)
);
INSERT INTO job_durations (le)
VALUES (1), (5), (15), (30), (60), (120), (300), (600), (1800), (3600), ('Infinity');

-- The figures start from the jobs already stored, so they go on from what /metrics showed before.
INSERT INTO job_finishes (status, total)
SELECT s.status, count(j.id)
FROM (VALUES ('succeeded'), ('failed'), ('cancelled')) AS s (status)
LEFT JOIN jobs AS j ON j.status = s.status
GROUP BY s.status;

UPDATE job_durations AS b SET jobs = d.jobs, seconds = d.seconds, frames = d.frames
FROM (
    SELECT le, count(*) AS jobs, sum(seconds) AS seconds, sum(frames) AS frames
    FROM (
        SELECT (SELECT min(le) FROM job_durations WHERE le >= t.seconds) AS le, t.seconds, t.frames
        FROM (
            SELECT greatest(0, extract(epoch FROM finished_at - started_at))::double precision AS seconds,
                   frames_total AS frames
            FROM jobs
            WHERE status = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL
        ) AS t
    ) AS u
    GROUP BY le
) AS d
WHERE b.le = d.le;

"""#),
    ]
}
