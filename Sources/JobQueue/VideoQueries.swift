// The statements of video jobs (migration 0007): uploaded videos in chunks, the preparing step's fenced
// writes of decoded input frames, and whole-file results (MP4s, point clouds) stored in chunks.
import Foundation

extension Queries {
    // MARK: Uploaded videos

    /// $1 job, $2 part (`left`, `right`, `stereo`), $3 chunk index, $4 bytes.
    static let insertUploadChunk = Query(name: "insert_upload_chunk", sql: """
        INSERT INTO job_uploads (job_id, part, chunk, data) VALUES ($1, $2, $3, $4)
        """)
    /// Each uploaded part with its chunk count. $1 job.
    static let uploadParts = Query(name: "upload_parts", sql: """
        SELECT part, count(*) FROM job_uploads WHERE job_id = $1 GROUP BY part ORDER BY part
        """)
    /// One chunk of an uploaded part. Binary. $1 job, $2 part, $3 chunk.
    static let uploadChunk = Query(name: "upload_chunk", sql: """
        SELECT data FROM job_uploads WHERE job_id = $1 AND part = $2 AND chunk = $3
        """)
    /// Once decoded, the upload is no longer needed. $1 job.
    static let deleteUploads = Query(name: "delete_uploads", sql: "DELETE FROM job_uploads WHERE job_id = $1")

    // MARK: The preparing step

    /// One decoded input frame, fenced by the preparing step's lease: a row when the lease holds (the frame
    /// is stored, or was by an earlier run of this step), none when it is lost. $1 job, $2 step index, $3 lease,
    /// $4 `claim.to`, $5 frame, $6 name, $7 left PNG, $8 right PNG.
    static let insertPreparedInput = Query(name: "insert_prepared_input", sql: """
        WITH fence AS (
            SELECT 1 AS held FROM job_windows WHERE job_id = $1 AND window_index = $2 AND lease = $3 AND status = $4
        ), stored AS (
            INSERT INTO job_inputs (job_id, frame_index, name, left_png, right_png)
            SELECT $1, $5, $6, $7, $8 FROM fence
            ON CONFLICT (job_id, frame_index) DO NOTHING
        )
        SELECT held FROM fence
        """)
    /// Input frames a re-run of the preparing step need not decode again. $1 job.
    static let storedInputCount = Query(name: "stored_input_count", sql: "SELECT count(*) FROM job_inputs WHERE job_id = $1")

    // MARK: Whole-file results in chunks

    /// $1 job, $2 path, $3 chunk, $4 bytes.
    static let insertFileChunk = Query(name: "insert_file_chunk", sql: """
        INSERT INTO job_files (job_id, path, chunk, data) VALUES ($1, $2, $3, $4)
        """)
    /// A re-run of the finishing step replaces a file. $1 job, $2 path.
    static let deleteFile = Query(name: "delete_file", sql: "DELETE FROM job_files WHERE job_id = $1 AND path = $2")
    /// Each stored file's path and size, without reading it. $1 job.
    static let fileSizes = Query(name: "file_sizes", sql: """
        SELECT path, sum(octet_length(data))::bigint FROM job_files WHERE job_id = $1 GROUP BY path ORDER BY path
        """)
    /// One chunk of a file. Binary. $1 job, $2 path, $3 chunk.
    static let fileChunk = Query(name: "file_chunk", sql: """
        SELECT data FROM job_files WHERE job_id = $1 AND path = $2 AND chunk = $3
        """)
    /// Whether the job's finishing step is stored: only then are whole-video files listed. $1 job, $2 `succeed.to`.
    static let finishStored = Query(name: "finish_stored", sql: """
        SELECT EXISTS (SELECT 1 FROM job_windows WHERE job_id = $1 AND kind = 'finish' AND status = $2)
        """)
}
