-- Retention: the workers' maintenance deletes the input frames and result files of jobs that finished
-- long enough ago, and records when on the job row, which stays (its status and error too).
ALTER TABLE jobs ADD COLUMN results_expired_at timestamptz;

-- The maintenance's scan: finished jobs whose data is still stored, oldest finish first.
CREATE INDEX jobs_retention ON jobs (finished_at)
    WHERE results_expired_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled');
