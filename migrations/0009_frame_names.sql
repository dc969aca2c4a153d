-- The names of a job's input frames, by frame index, for jobs whose frames are not named by their source
-- index: a tar's members may be called anything (`img_17`, `left-000123`), and a client must know frame i's
-- name to address its files (`disparity/{name}.png`) before the job has succeeded. Each element is the stem
-- of the frame's result files (its input name without `.png`). NULL when frame i is named by its source
-- index, start_frame + i * frame_step zero-padded to 4 digits: every video job, and tars named so, which
-- store nothing. Written in the enqueue's own transaction; jobs stored before this migration read NULL.
ALTER TABLE jobs
    ADD COLUMN frame_names text[]
        CONSTRAINT jobs_frame_names_one_per_frame
        CHECK (frame_names IS NULL
               OR (cardinality(frame_names) = frames_total AND array_position(frame_names, NULL) IS NULL));
