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
