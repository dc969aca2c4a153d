// The steps shared by the API's and the worker's transactions on windows: planning a job's windows, and
// moving the job after one of its windows moved.
import Foundation

/// Statements run inside a caller's transaction, so that a window's move and its job's follow-up commit together.
enum WindowPlanner {
    /// Stores the windows of `WindowAssignment.plan` and the finishing step for a job of `frames` frames,
    /// and with `prepare` the preparing step of a video job.
    static func store(job: UUID, frames: Int, kernelSize: Int, maxAttempts: Int, prepare: Bool = false, now: SQLValue,
                      on connection: PostgresConnection) throws {
        let plan = JobWindow.plan(frames: frames, kernelSize: kernelSize, prepare: prepare)
        func column(_ value: (Int, JobWindow.Kind, Range<Int>, Range<Int>) -> String) -> SQLValue {
            .textArray(plan.map { value($0.index, $0.kind, $0.inputFrames, $0.resultFrames) })
        }
        try connection.execute(Queries.insertWindows, [
            .uuid(job), .text(JobStatus.initial.rawValue), .int(maxAttempts), now,
            column { i, _, _, _ in String(i) }, column { _, kind, _, _ in kind.rawValue },
            column { _, _, input, _ in String(input.lowerBound) }, column { _, _, input, _ in String(input.count) },
            column { _, _, _, result in String(result.lowerBound) }, column { _, _, _, result in String(result.upperBound) },
        ])
        try connection.execute(Queries.setWindowsTotal, [.uuid(job), .int(plan.filter { $0.kind == .window }.count)])
    }

    /// Moves the job to the status its windows give it (`Queries.deriveJobStatus`), counting a terminal move.
    /// Locks the job row first: the derivation then sees every window move committed before.
    static func deriveStatus(job: UUID, now: SQLValue, on connection: PostgresConnection) throws {
        try connection.execute(Queries.lockJob, [.uuid(job)])
        try connection.execute(Queries.deriveJobStatus, [
            .uuid(job), .text(JobTransition.retry.to.rawValue), .text(JobTransition.claim.to.rawValue),
            .text(JobTransition.succeed.to.rawValue), .text(JobTransition.fail.to.rawValue),
            .text(JobTransition.cancelRunning.to.rawValue), .statuses(JobStatus.unfinished), now,
        ])
    }

    /// A window failed for good: the job's other windows are cancelled (a running one's worker finds its
    /// lease lost at its next heartbeat), the job's error names the window, and the job fails.
    static func failJob(_ job: UUID, window: JobWindow?, error: JobErrorInfo, now: SQLValue, on connection: PostgresConnection) throws {
        try connection.execute(Queries.cancelWindowsOfJob, [
            .uuid(job), .statuses([JobTransition.cancelQueued.from, JobTransition.cancelRunning.from]),
            .text(JobTransition.cancelQueued.to.rawValue), now,
        ])
        try connection.execute(Queries.setJobError, [.uuid(job), .text(error.code), .text(describe(window, error))])
        try deriveStatus(job: job, now: now, on: connection)
    }

    /// After a window's attempt ended in `status` (by `retry` or the lease reaper).
    static func afterAttempt(job: UUID, window: JobWindow?, status: JobStatus, error: JobErrorInfo, now: SQLValue,
                             on connection: PostgresConnection) throws {
        if status == JobTransition.fail.to {
            try failJob(job, window: window, error: error, now: now, on: connection)
        } else {
            // The job shows its windows' last error while the window waits for its retry.
            try connection.execute(Queries.setJobError, [.uuid(job), .text(error.code), .text(describe(window, error))])
            try deriveStatus(job: job, now: now, on: connection)
        }
    }

    /// "window 3 (frames 30-39): message", or the finishing step's.
    static func describe(_ window: JobWindow?, _ error: JobErrorInfo) -> String {
        guard let window else { return error.message }
        switch window.kind {
        case .finish:
            return "finishing step: \(error.message)"
        case .prepare:
            return "preparing step: \(error.message)"
        case .window:
            return "window \(window.index) (frames \(window.inputFrames.lowerBound)-\(window.inputFrames.upperBound - 1)): \(error.message)"
        }
    }
}
