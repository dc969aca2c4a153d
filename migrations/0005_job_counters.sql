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
