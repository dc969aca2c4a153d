// What a job is: its parameters, its input frames, and the row the API reports.
import Foundation
@_exported import VideoPlan

/// How to run the network on a job: the rules are `InferenceParameters`', shared with the CLI and the network.
public typealias JobParameters = InferenceParameters

/// One stereo frame pair of a job's input, as PNG bytes.
public struct InputFrame: Equatable, Sendable {
    /// Position in the video, from 0.
    public let index: Int
    /// The frame's file name (used to name the outputs).
    public let name: String
    public let left: Data
    public let right: Data

    public init(index: Int, name: String, left: Data, right: Data) {
        self.index = index
        self.name = name
        self.left = left
        self.right = right
    }
}

/// Why a job failed (or why its last attempt failed, while it waits for a retry).
public struct JobErrorInfo: Equatable, Sendable {
    /// A stable machine-readable code, e.g. `bad_input`, `worker_lost`, `processing_failed`.
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// A job as the API reports it. Inputs and results are not included; they live in tables of their own.
public struct JobRecord: Equatable, Sendable {
    public let id: UUID
    public let status: JobStatus
    public let parameters: JobParameters
    /// Attempts spent so far (a hand-back on shutdown gives its attempt back).
    public let attempt: Int
    public let maxAttempts: Int
    /// Fencing token: incremented by every claim; a worker's writes carry the value it claimed.
    public let lease: Int
    public let workerId: String?
    public let framesDone: Int
    public let framesTotal: Int
    public let cancelRequested: Bool
    public let error: JobErrorInfo?
    public let idempotencyKey: String?
    public let payloadDigest: String?
    public let createdAt: Date
    /// When the job last entered `queued` (creation, retry or hand-back).
    public let queuedAt: Date
    /// Earliest time a worker may claim it (later than `queuedAt` while backing off).
    public let runAfter: Date
    /// When the current or last attempt started.
    public let startedAt: Date?
    public let heartbeatAt: Date?
    public let leaseExpiresAt: Date?
    /// When the job reached a terminal state.
    public let finishedAt: Date?
    /// When retention deleted the job's inputs and results (nil while they are kept).
    public let resultsExpiredAt: Date?
    /// The job's windows, the finishing step not counted; nil until they are planned, and for a job that
    /// finished before windows existed (migration 0006), whose results are whole files.
    public let windowsTotal: Int?
    /// What the frames came from (migration 0007; `frames` before it).
    public var source: JobSource = .frames
    /// The MP4s' frame rate as `N/D`.
    public var videoRate: String = "30/1"
}

/// What a job's frames were uploaded as.
public enum JobSource: String, Sendable, CaseIterable {
    /// Tars of PNG or JPEG frames, stored as job inputs at upload.
    case frames
    /// A left and a right video file, decoded by the preparing step.
    case videos
    /// One video with both views, left | right.
    case sbs
    /// One video with both views, top over bottom.
    case tb

    /// Whether a preparing step decodes the frames (they are not stored at upload).
    public var isVideo: Bool { self != .frames }
}

/// A job with its windows and finishing step (in index order; none for a job stored before windows), and
/// its frames' names, as one statement reads them for the API.
public struct JobReport: Equatable, Sendable {
    public let job: JobRecord
    public let windows: [JobWindow]
    /// `.own` names from `JobStore.report`; a list (`JobStore.reports`) says only `.ownUnread`.
    public let frameNames: FrameNames

    public init(job: JobRecord, windows: [JobWindow], frameNames: FrameNames = .sourceIndices) {
        self.job = job
        self.windows = windows
        self.frameNames = frameNames
    }
}
