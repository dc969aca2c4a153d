-- Windows are the unit of work. A job's video is cut into the windows of `WindowAssignment.plan` (the
-- reference's sliding windows, each input frame's result given by the first window that keeps it), plus one
-- finishing step, claimed once every window is stored, that renders what needs the whole video. Each
-- window has its own lease, fencing counter, attempts and backoff; the job's status follows from its
-- windows' (see `JobStatus`). Stop every worker of the old version before applying this migration.
ALTER TABLE jobs ADD COLUMN windows_total integer CHECK (windows_total >= 1);

CREATE TABLE job_windows (
    job_id           uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- 0..<windows_total for the windows; windows_total for the finishing step.
    window_index     integer NOT NULL CHECK (window_index >= 0),
    kind             text NOT NULL CHECK (kind IN ('window', 'finish')),
    -- The input frames the network reads: first_frame ..< first_frame + frames.
    first_frame      integer NOT NULL CHECK (first_frame >= 0),
    frames           integer NOT NULL CHECK (frames >= 1),
    -- The input frames whose results the window stores: result_first ..< result_end (empty for the finish).
    result_first     integer NOT NULL,
    result_end       integer NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
    -- Fencing token: every claim increments it; every write by a worker must present it.
    lease            bigint NOT NULL DEFAULT 0,
    worker_id        text,
    heartbeat_at     timestamptz,
    lease_expires_at timestamptz,
    run_after        timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    -- Refinement iterations of the current attempt, as its worker last reported them.
    iterations_done  integer NOT NULL DEFAULT 0 CHECK (iterations_done >= 0),
    iterations_total integer CHECK (iterations_total >= 0),
    error_code       text,
    error_message    text,
    PRIMARY KEY (job_id, window_index),
    CHECK (result_first <= result_end)
);
CREATE UNIQUE INDEX job_windows_one_finish ON job_windows (job_id) WHERE kind = 'finish';
-- The claim's scan and the lease reaper's.
CREATE INDEX job_windows_claimable ON job_windows (run_after) WHERE status = 'queued';
CREATE INDEX job_windows_leases ON job_windows (lease_expires_at) WHERE status = 'running';
-- The claim counts each unfinished job's running windows.
CREATE INDEX job_windows_running ON job_windows (job_id) WHERE status = 'running';

-- One row per input frame of a job, written by the window that gives it (in that window's fenced
-- transaction): no stored value is larger than one frame's data. Jobs stored before this migration keep
-- their files in job_results and are served from there.
CREATE TABLE job_frames (
    job_id        uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    frame_index   integer NOT NULL CHECK (frame_index >= 0),
    -- The result files' name (the input frame's name without .png).
    name          text NOT NULL,
    height        integer NOT NULL CHECK (height >= 1),
    width         integer NOT NULL CHECK (width >= 1),
    -- float32 little-endian, H × W, row-major: the frame's part of disparity.npy.
    disparity     bytea NOT NULL,
    disparity_png bytea NOT NULL,
    depth_png     bytea,
    -- The frame's smallest and largest finite disparity (NaN when it has none), for the video's colour scale.
    min_disparity double precision NOT NULL,
    max_disparity double precision NOT NULL,
    -- Written by the finishing step, one frame at a time.
    color_png     bytea,
    video_png     bytea,
    PRIMARY KEY (job_id, frame_index)
);

-- Retention deletes a job's rows in batches of rows: `results_expired_at` is set first (the results
-- routes answer 410 from then on) and `purge_pending` until every input and result row is gone.
ALTER TABLE jobs ADD COLUMN purge_pending boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_purge_pending ON jobs (id) WHERE purge_pending;
-- Jobs without windows yet, which a worker plans before it claims.
CREATE INDEX jobs_unplanned ON jobs (created_at, id) WHERE windows_total IS NULL AND status IN ('queued', 'running');

-- Jobs the old workers left running go back to the queue (those workers are stopped); like every queued
-- job without windows, a worker plans their windows before claiming one.
UPDATE jobs SET status = 'queued', lease_expires_at = NULL, run_after = now(), queued_at = now(), frames_done = 0
WHERE status = 'running';
