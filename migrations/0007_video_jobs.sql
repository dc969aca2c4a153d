-- Video in, video out. A job's left and right may be video files, or one `stereo` video packed side by
-- side or top over bottom; the upload is checked (probed, counted, never decoded) and stored in chunks, and
-- a preparing step, claimed like a window, decodes its frames into job_inputs before the windows run.
-- The run's new parameters (frame selection, resolution cap, MP4 rate, point-cloud settings, the result
-- kinds to render) live on the job. Whole-video outputs (video.mp4, color.mp4) and point clouds are files
-- stored in chunks, so no stored value is larger than a chunk or one frame's data.

-- The rules are `InferenceParameters.validate`'s; these repeat its bounds.
ALTER TABLE jobs
    ADD COLUMN start_frame integer NOT NULL DEFAULT 0 CHECK (start_frame >= 0),
    ADD COLUMN frame_step  integer NOT NULL DEFAULT 1 CHECK (frame_step >= 1),
    ADD COLUMN frame_count integer CHECK (frame_count >= 1),
    ADD COLUMN max_size    integer CHECK (max_size >= 32),
    ADD COLUMN fps         double precision CHECK (fps > 0),
    ADD COLUMN cx_px       double precision,
    ADD COLUMN cy_px       double precision,
    ADD COLUMN max_depth_m double precision CHECK (max_depth_m > 0),
    -- Comma-separated `ResultKind`s; NULL: every kind that applies.
    ADD COLUMN outputs     text,
    -- Where the frames came from: 'frames' (tars of images), 'videos' (a left and a right file), or one
    -- packed file, 'sbs' or 'tb'.
    ADD COLUMN source      text NOT NULL DEFAULT 'frames' CHECK (source IN ('frames', 'videos', 'sbs', 'tb')),
    -- The MP4s' frame rate, N/D: a video's own rate divided by frame_step, or fps (30) for frames.
    ADD COLUMN video_rate  text NOT NULL DEFAULT '30/1';

-- The preparing step: one per video job, claimed before its windows, which wait until it is stored.
ALTER TABLE job_windows DROP CONSTRAINT job_windows_kind_check;
ALTER TABLE job_windows ADD CONSTRAINT job_windows_kind_check CHECK (kind IN ('window', 'finish', 'prepare'));
CREATE UNIQUE INDEX job_windows_one_prepare ON job_windows (job_id) WHERE kind = 'prepare';

-- `outputs` without `disparity` stores no 16-bit PNG.
ALTER TABLE job_frames ALTER COLUMN disparity_png DROP NOT NULL;

-- An uploaded video, in chunks of at most 1 MiB, until its preparing step has decoded it.
CREATE TABLE job_uploads (
    id     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    part   text NOT NULL CHECK (part IN ('left', 'right', 'stereo')),
    chunk  integer NOT NULL CHECK (chunk >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (job_id, part, chunk)
);

-- Result files stored whole-file but in chunks of at most 1 MiB: video.mp4, color.mp4, points/NNNN.ply.
-- Written by the finishing step (fenced by its lease), each file's chunks in one transaction.
CREATE TABLE job_files (
    id     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    path   text NOT NULL,
    chunk  integer NOT NULL CHECK (chunk >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (job_id, path, chunk)
);
