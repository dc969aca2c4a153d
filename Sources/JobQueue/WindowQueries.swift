// The statements of windows (migration 0006): planning, the claim, the fenced writes of a window's worker,
// and the one statement that derives a job's status from its windows'. Every write after a claim is fenced:
// WHERE job_id = $1 AND window_index = $2 AND lease = $3.
//
// Lock order, everywhere: a job's window rows first (several in window order), its job row last. The claim
// takes one window (SKIP LOCKED) and then the job; a window's outcome locks its window, then the job; a
// cancel locks the job's windows in order, then the job. So no two transactions wait on each other in a ring.
import Foundation

extension Queries {
    /// The columns `decodeWindow` reads, in its order.
    static let windowColumns = """
        window_index, kind, first_frame, frames, result_first, result_end, status, attempt, worker_id,
        iterations_done, iterations_total, error_code, error_message
        """

    static func decodeWindow(_ row: Row, from first: Int = 0) throws -> JobWindow {
        let c = first
        guard let kind = JobWindow.Kind(rawValue: try row.string(c + 1)), let status = JobStatus(rawValue: try row.string(c + 6)) else {
            throw PostgresError.decoding("window kind '\(try row.string(c + 1))' or status '\(try row.string(c + 6))'")
        }
        let error: JobErrorInfo? = row.isNull(c + 11) ? nil : JobErrorInfo(code: try row.string(c + 11), message: try row.optionalString(c + 12) ?? "")
        return JobWindow(index: try row.int(c), kind: kind, inputFrames: try row.int(c + 2)..<(try row.int(c + 2) + row.int(c + 3)),
                         resultFrames: try row.int(c + 4)..<(try row.int(c + 5)), status: status, attempt: try row.int(c + 7),
                         workerId: try row.optionalString(c + 8), iterationsDone: try row.int(c + 9),
                         iterationsTotal: row.isNull(c + 10) ? nil : try row.int(c + 10), error: error)
    }

    // MARK: Planning

    /// Every window of a job in one statement. $1 job, $2 `JobStatus.initial`, $3 max attempts, $4 now,
    /// then arrays of equal length (as `text[]` of integers): $5 index, $6 kind, $7 first frame, $8 frames,
    /// $9 result first, $10 result end.
    static let insertWindows = Query(name: "insert_windows", sql: """
        INSERT INTO job_windows (job_id, window_index, kind, first_frame, frames, result_first, result_end, status,
                                 max_attempts, run_after)
        SELECT $1, w.i, w.kind, w.first_frame, w.frames, w.result_first, w.result_end, $2, $3, \(now(4))
        FROM unnest($5::integer[], $6::text[], $7::integer[], $8::integer[], $9::integer[], $10::integer[])
             AS w (i, kind, first_frame, frames, result_first, result_end)
        """)
    /// $1 job, $2 windows (without the finishing step).
    static let setWindowsTotal = Query(name: "set_windows_total", sql: "UPDATE jobs SET windows_total = $2 WHERE id = $1")
    /// Jobs queued before migration 0006 (or whose frame count was not known at enqueue) have no windows
    /// yet. Up to $2 of them in a state of $1, locked for the planning transaction; others' skipped.
    static let unplannedJobs = Query(name: "unplanned_jobs", sql: """
        SELECT id, frames_total, kernel_size, max_attempts FROM jobs
        WHERE windows_total IS NULL AND status = ANY($1::text[])
        ORDER BY created_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """)
    /// The windows of a job, for its JSON (the finishing step last).
    static let windowsOfJob = Query(name: "windows_of_job", sql: """
        SELECT \(windowColumns) FROM job_windows WHERE job_id = $1 ORDER BY window_index
        """)

    // MARK: The claim

    /// What makes window `w` claimable apart from its backoff (`run_after`): queued ($queued), of a job ($unfinished)
    /// whose cancellation was not requested, and for the finishing step, every window of its job stored
    /// ($succeeded). The claim and `secondsUntilClaimable` share it, so a worker's wait for the next backoff to
    /// end looks at exactly the windows a claim could take. The job's table is `jobs` (or `open_jobs`, which
    /// filtered it already) under the alias `j`.
    private static func claimable(queued: Int, succeeded: Int, unfinished: Int?) -> String {
        let job = unfinished.map { "AND j.status = ANY($\($0)::text[]) AND NOT j.cancel_requested" } ?? ""
        return """
            w.status = $\(queued) \(job)
              AND (w.kind = 'prepare' OR NOT EXISTS (
                    -- A window waits for its job's preparing step, the finishing step for every window too.
                    SELECT 1 FROM job_windows AS o WHERE o.job_id = w.job_id AND o.status <> $\(succeeded)
                      AND (o.kind = 'prepare' OR (w.kind = 'finish' AND o.kind = 'window'))))
            """
    }

    /// One statement, committed on its own: among claimable windows (queued, past their backoff, of a job not
    /// being cancelled; the finishing step only once every window of its job is stored), those of the job
    /// with the fewest running windows first, then the oldest job, then the first window. So idle workers
    /// pile onto one video, and a second video starts as soon as a worker frees. A video job's windows are
    /// claimable once its preparing step is stored (migration 0007).
    /// $1 `claim.from`, $2 `claim.to`, $3 worker id, $4 lease seconds, $5 now, $6 `succeed.to`,
    /// $7 `JobStatus.unfinished`.
    static let claimWindow = Query(name: "claim_window", sql: """
        WITH open_jobs AS (
            -- Each unfinished job once, with its running windows counted once (not once per window).
            SELECT j.id, j.created_at,
                   (SELECT count(*) FROM job_windows AS r WHERE r.job_id = j.id AND r.status = $2) AS running
            FROM jobs AS j
            WHERE j.status = ANY($7::text[]) AND NOT j.cancel_requested
        ), candidate AS (
            SELECT w.job_id, w.window_index
            FROM job_windows AS w JOIN open_jobs AS j ON j.id = w.job_id
            WHERE \(claimable(queued: 1, succeeded: 6, unfinished: nil)) AND w.run_after <= \(now(5))
            ORDER BY j.running, j.created_at, j.id, w.window_index
            LIMIT 1
            FOR UPDATE OF w SKIP LOCKED
        ), claimed AS (
            UPDATE job_windows AS w SET
                status = $2, attempt = w.attempt + 1, lease = w.lease + 1, worker_id = $3,
                started_at = \(now(5)), heartbeat_at = \(now(5)),
                lease_expires_at = \(now(5)) + make_interval(secs => $4::double precision),
                iterations_done = 0
            FROM candidate AS c
            WHERE w.job_id = c.job_id AND w.window_index = c.window_index
            RETURNING w.job_id, w.lease, \(windowColumns.split(separator: ",").map { "w." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", "))
        ), job AS (
            UPDATE jobs AS j SET status = $2, started_at = COALESCE(j.started_at, \(now(5))),
                attempt = GREATEST(j.attempt, c.attempt), worker_id = $3, heartbeat_at = \(now(5))
            FROM claimed AS c
            WHERE j.id = c.job_id
            RETURNING j.id, j.iters, j.kernel_size, j.focal_px, j.baseline_m, j.frames_total,
                      \(videoParameterColumns.split(separator: ",").map { "j." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")),
                      j.source, j.video_rate
        )
        SELECT c.*, job.iters, job.kernel_size, job.focal_px, job.baseline_m, job.frames_total,
               \(videoParameterColumns.split(separator: ",").map { "job." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")),
               job.source, job.video_rate
        FROM claimed AS c JOIN job ON job.id = c.job_id
        """)

    /// Seconds from now ($4) until the earliest backoff among claimable windows ends (zero or less: one is
    /// claimable now), NULL when no window waits. An idle worker waits no longer than that, so a retry is
    /// claimed when its backoff ends rather than at the next poll. The claimable index (`run_after` of queued
    /// windows) gives the earliest first. $1 `claim.from`, $2 `succeed.to`, $3 `JobStatus.unfinished`.
    static let secondsUntilClaimable = Query(name: "seconds_until_claimable", sql: """
        SELECT extract(epoch FROM w.run_after - \(now(4)))::double precision
        FROM job_windows AS w JOIN jobs AS j ON j.id = w.job_id
        WHERE \(claimable(queued: 1, succeeded: 2, unfinished: 3))
        ORDER BY w.run_after
        LIMIT 1
        """)

    // MARK: The window's worker

    /// The window's input frames, in order. Binary results. $1 job, $2 first frame, $3 end.
    static let loadWindowInputs = Query(name: "load_window_inputs", sql: """
        SELECT frame_index, name, left_png, right_png FROM job_inputs
        WHERE job_id = $1 AND frame_index >= $2 AND frame_index < $3 ORDER BY frame_index
        """)
    /// $4 lease seconds, $5 iterations done, $6 iterations total or NULL, $7 `claim.to`, $8 now. No row: the
    /// lease is lost. Returns whether the job's cancellation was requested.
    static let heartbeatWindow = Query(name: "heartbeat_window", sql: """
        UPDATE job_windows AS w SET heartbeat_at = \(now(8)),
            lease_expires_at = \(now(8)) + make_interval(secs => $4::double precision),
            iterations_done = $5, iterations_total = COALESCE($6::integer, w.iterations_total)
        FROM jobs AS j
        WHERE w.job_id = $1 AND w.window_index = $2 AND w.lease = $3 AND w.status = $7 AND j.id = w.job_id
        RETURNING j.cancel_requested
        """)
    /// Locks the window for its outcome's transaction; its status if `lease` ($3) still holds it.
    static let lockFencedWindow = Query(name: "lock_fenced_window", sql: """
        SELECT status FROM job_windows WHERE job_id = $1 AND window_index = $2 AND lease = $3 FOR UPDATE
        """)
    /// One output frame. $1 job, $2 frame, $3 name, $4 height, $5 width, $6 disparity, $7 disparity PNG,
    /// $8 depth PNG or NULL, $9 min, $10 max. A frame stored twice is a bug: the primary key refuses it.
    static let insertFrame = Query(name: "insert_frame", sql: """
        INSERT INTO job_frames (job_id, frame_index, name, height, width, disparity, disparity_png, depth_png,
                                min_disparity, max_disparity)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::double precision, $10::double precision)
        """)
    /// The fenced move of a window out of `running` (after `lockFencedWindow`). $4 `from`, $5 `to`, $6 now,
    /// $7/$8 the error or NULL.
    static let finishWindow = Query(name: "finish_window", sql: """
        UPDATE job_windows SET status = $5, finished_at = \(now(6)), lease_expires_at = NULL,
            error_code = COALESCE($7, error_code), error_message = COALESCE($8, error_message)
        WHERE job_id = $1 AND window_index = $2 AND lease = $3 AND status = $4
        RETURNING result_end - result_first
        """)
    /// $1 job, $2 frames just stored.
    static let addFramesDone = Query(name: "add_frames_done", sql: "UPDATE jobs SET frames_done = frames_done + $2 WHERE id = $1")
    /// The finishing step's colour scale: the smallest and largest finite disparity of the job's frames.
    static let disparityRange = Query(name: "disparity_range", sql: """
        SELECT min(min_disparity) FILTER (WHERE min_disparity <> 'NaN'), max(max_disparity) FILTER (WHERE max_disparity <> 'NaN')
        FROM job_frames WHERE job_id = $1
        """)
    /// Frames the finishing step has not rendered yet (a re-run resumes). $1 job.
    static let framesToRender = Query(name: "frames_to_render", sql: """
        SELECT frame_index FROM job_frames WHERE job_id = $1 AND color_png IS NULL ORDER BY frame_index
        """)
    /// One stored frame's disparity with its input's left image (for `video/`). Binary. $1 job, $2 frame.
    static let frameForRendering = Query(name: "frame_for_rendering", sql: """
        SELECT f.height, f.width, f.disparity, i.left_png, f.name FROM job_frames AS f
        LEFT JOIN job_inputs AS i ON i.job_id = f.job_id AND i.frame_index = f.frame_index
        WHERE f.job_id = $1 AND f.frame_index = $2
        """)
    /// One rendered frame, fenced by the finishing step's lease. $1 job, $2 finishing step's index, $3 lease,
    /// $4 frame, $5 colour PNG, $6 video PNG or NULL, $7 `claim.to`.
    static let storeRenderedFrame = Query(name: "store_rendered_frame", sql: """
        UPDATE job_frames SET color_png = $5, video_png = $6
        WHERE job_id = $1 AND frame_index = $4 AND EXISTS (
            SELECT 1 FROM job_windows WHERE job_id = $1 AND window_index = $2 AND lease = $3 AND status = $7)
        RETURNING frame_index
        """)

    /// The number of parameters `windowRetryAssignments` takes.
    static let windowRetryParameterCount = 8
    /// `retryAssignments` for a window (the job's `cancel_requested` read through the join alias `j`):
    /// cancelled if the job's cancellation was requested, failed when the window's attempts are used up,
    /// else queued again after min(cap, base * 2^(attempt-1)) seconds. Parameters from `$first`: cancelled,
    /// failed, queued, error code, error message, backoff base s, backoff cap s, now.
    private static func windowRetryAssignments(first: Int, message: String = "") -> String {
        let p = (0..<windowRetryParameterCount).map { "$\(first + $0)" }
        let errorMessage = message.isEmpty ? p[4] : message.replacingOccurrences(of: "MESSAGE", with: p[4])
        return """
            status = CASE WHEN j.cancel_requested THEN \(p[0]) WHEN w.attempt >= w.max_attempts THEN \(p[1]) ELSE \(p[2]) END,
            finished_at = CASE WHEN j.cancel_requested OR w.attempt >= w.max_attempts THEN \(now(first + 7)) ELSE NULL END,
            run_after = \(now(first + 7)) + make_interval(secs => LEAST(\(p[6])::double precision,
                                                                        \(p[5])::double precision * power(2, w.attempt - 1))),
            lease_expires_at = NULL,
            error_code = \(p[3]), error_message = \(errorMessage)
        """
    }
    /// $1 job, $2 window, $3 lease, $4...$11 the retry parameters, $12 `retry.from`.
    static let retryWindow = Query(name: "retry_window", sql: """
        UPDATE job_windows AS w SET \(windowRetryAssignments(first: 4))
        FROM jobs AS j
        WHERE w.job_id = $1 AND w.window_index = $2 AND w.lease = $3 AND w.status = $12 AND j.id = w.job_id
        RETURNING w.status
        """)
    /// `retryWindow` for every window in $9 (`retry.from`) whose lease ran out before now ($8), locked in
    /// window order; the message gets the lost worker's id.
    static let expireWindowLeases = Query(name: "expire_window_leases", sql: """
        WITH expired AS (
            SELECT job_id, window_index FROM job_windows
            WHERE status = $9 AND lease_expires_at < \(now(8))
            ORDER BY job_id, window_index
            FOR UPDATE SKIP LOCKED
        )
        UPDATE job_windows AS w SET \(windowRetryAssignments(first: 1, message: "format('%s (worker %s)', MESSAGE::text, COALESCE(w.worker_id, 'unknown'))"))
        FROM jobs AS j, expired AS e
        WHERE w.job_id = e.job_id AND w.window_index = e.window_index AND j.id = w.job_id
        RETURNING w.job_id, w.window_index, w.status
        """)
    /// Shutdown: back to queued at once, giving the attempt back; cancelled if that was requested.
    /// $4 `cancelRunning.to`, $5 `handBack.to`, $6 `handBack.from`, $7 now.
    static let handBackWindow = Query(name: "hand_back_window", sql: """
        UPDATE job_windows AS w SET
            status = CASE WHEN j.cancel_requested THEN $4 ELSE $5 END,
            finished_at = CASE WHEN j.cancel_requested THEN \(now(7)) ELSE NULL END,
            attempt = w.attempt - 1, run_after = \(now(7)), lease_expires_at = NULL, iterations_done = 0
        FROM jobs AS j
        WHERE w.job_id = $1 AND w.window_index = $2 AND w.lease = $3 AND w.status = $6 AND j.id = w.job_id
        RETURNING w.status
        """)
    /// After a window failed for good: every other window of the job still in a state of $2 (queued or
    /// running) is cancelled, locked in window order. A worker whose running window this takes finds its
    /// lease lost at the next heartbeat. $3 `cancelQueued.to`, $4 now.
    static let cancelWindowsOfJob = Query(name: "cancel_windows_of_job", sql: """
        WITH locked AS (
            SELECT window_index FROM job_windows WHERE job_id = $1 AND status = ANY($2::text[])
            ORDER BY window_index
            FOR UPDATE
        )
        UPDATE job_windows AS w SET status = $3, finished_at = \(now(4)), lease_expires_at = NULL
        FROM locked AS l
        WHERE w.job_id = $1 AND w.window_index = l.window_index
        """)
    /// The job's error after one of its windows' attempts failed. $1 job, $2 code, $3 message.
    static let setJobError = Query(name: "set_job_error", sql: """
        UPDATE jobs SET error_code = $2, error_message = $3 WHERE id = $1
        """)

    // MARK: The job's status, from its windows

    /// Locks the job row, so that the statement after it (`deriveJobStatus`, with a snapshot of its own)
    /// sees every window move committed by a transaction that derived before this one. NO KEY UPDATE, the
    /// lock an UPDATE of the row takes: a FOR UPDATE would also wait for the key-share locks that other
    /// windows' frame inserts hold on the job row through their foreign key, while those wait for this one.
    static let lockJob = Query(name: "lock_job", sql: "SELECT status FROM jobs WHERE id = $1 FOR NO KEY UPDATE")
    /// The one place a job's status follows from its windows' (the table in `JobStatus`):
    /// succeeded once its finishing step is; failed once a window failed; cancelled once cancellation was
    /// requested and no window runs; running while a window runs or once a window's results are stored;
    /// queued before that. `attempt` is the highest attempt among its windows. A terminal job is never moved
    /// again. $1 job, $2 queued, $3 running, $4 succeeded, $5 failed, $6 cancelled (the targets of the
    /// transitions `JobStatus.derived` names), $7 `JobStatus.unfinished`, $8 now.
    static let deriveJobStatus = Query(name: "derive_job_status", sql: """
        WITH w AS (
            SELECT count(*) FILTER (WHERE status = $3) AS running,
                   count(*) FILTER (WHERE status = $4 AND kind <> 'finish') AS stored,
                   coalesce(bool_or(kind = 'finish' AND status = $4), false) AS finished,
                   coalesce(bool_or(status = $5), false) AS failed,
                   coalesce(max(attempt), 0) AS attempt
            FROM job_windows WHERE job_id = $1
        ), target AS (
            SELECT CASE WHEN w.finished THEN $4 WHEN w.failed THEN $5
                        WHEN j.cancel_requested AND w.running = 0 THEN $6
                        WHEN w.running > 0 OR w.stored > 0 THEN $3 ELSE $2 END AS status,
                   j.status AS old, w.attempt, w.windows_planned
            FROM (SELECT *, EXISTS (SELECT 1 FROM job_windows WHERE job_id = $1) AS windows_planned FROM w) AS w, jobs AS j
            WHERE j.id = $1
        ), moved AS (
            UPDATE jobs AS j SET
                status = t.status,
                attempt = CASE WHEN t.windows_planned THEN t.attempt ELSE j.attempt END,
                finished_at = CASE WHEN t.status = ANY($7::text[]) THEN NULL ELSE \(now(8)) END,
                frames_done = CASE WHEN t.status = $4 THEN j.frames_total ELSE j.frames_done END,
                lease_expires_at = NULL,
                error_code = CASE WHEN t.status = $4 THEN NULL ELSE j.error_code END,
                error_message = CASE WHEN t.status = $4 THEN NULL ELSE j.error_message END,
                queued_at = CASE WHEN t.status = $2 AND t.old <> $2 THEN \(now(8)) ELSE j.queued_at END
            FROM target AS t
            WHERE j.id = $1 AND j.status = ANY($7::text[])
            RETURNING j.id, t.status, t.old, j.started_at, j.finished_at, j.frames_total
        ), counted AS (
            UPDATE job_finishes AS f SET total = f.total + 1
            FROM moved AS m WHERE f.status = m.status AND m.old <> m.status
        ), timed AS (
            UPDATE job_durations AS b SET jobs = b.jobs + 1, seconds = b.seconds + d.seconds, frames = b.frames + d.frames
            FROM (SELECT greatest(0, extract(epoch FROM finished_at - started_at))::double precision AS seconds,
                         frames_total AS frames
                  FROM moved WHERE status = $4 AND old <> status) AS d
            WHERE b.le = (SELECT min(le) FROM job_durations WHERE le >= d.seconds))
        SELECT status, old FROM moved
        """)

    // MARK: Results by frame

    /// Whether the job's results are per-frame rows (jobs stored from migration 0006 on) and how many.
    static let frameCount = Query(name: "frame_count", sql: "SELECT count(*) FROM job_frames WHERE job_id = $1")
    /// The stored frames' indices and names, in order (cheap: no frame data). $1 job.
    static let frameNames = Query(name: "frame_names", sql: """
        SELECT frame_index, name, height, width, depth_png IS NOT NULL, color_png IS NOT NULL, video_png IS NOT NULL
        FROM job_frames WHERE job_id = $1 ORDER BY frame_index
        """)
    /// One column of one stored frame, by its output name. Binary. $1 job, $2 name.
    static func frameFile(_ column: String) -> Query {
        Query(name: "frame_\(column)", sql: "SELECT \(column) FROM job_frames WHERE job_id = $1 AND name = $2")
    }
    /// One frame's float32 disparity, by index. Binary. $1 job, $2 frame.
    static let frameDisparity = Query(name: "frame_disparity", sql: """
        SELECT disparity FROM job_frames WHERE job_id = $1 AND frame_index = $2
        """)

    /// Every stored frame's name, size and the byte length of each file, in order, without reading any
    /// file: what `result.tar`'s Content-Length and `disparity.npy`'s offsets are computed from. $1 job.
    static let frameLayout = Query(name: "frame_layout", sql: """
        SELECT frame_index, name, height, width, octet_length(disparity_png), octet_length(depth_png),
               octet_length(color_png), octet_length(video_png)
        FROM job_frames WHERE job_id = $1 ORDER BY frame_index
        """)
}
