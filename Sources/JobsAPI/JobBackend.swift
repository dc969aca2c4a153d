// What the job routes need from storage, as a protocol: the PostgreSQL adapter implements it for the service,
// an in-memory double implements it for route tests.
import Foundation
import JobQueue

/// A job as the API reports it.
public struct JobSnapshot: Equatable, Sendable {
    public var id: UUID
    public var status: JobStatus
    public var parameters: JobParameters
    public var attempt: Int
    public var framesDone: Int
    public var framesTotal: Int
    public var error: JobErrorInfo?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// When retention deleted the job's inputs and results; nil while they are kept.
    public var resultsExpiredAt: Date?
    /// Its windows and finishing step, in index order, read with the job; empty for a job stored before
    /// windows (whose results are whole files) or one not planned yet.
    public var windows: [JobWindow]
    /// What the frames were uploaded as.
    public var source: JobSource
    /// The input frames' names, which name their files: `frames_ready.names`.
    public var frameNames: FrameNames

    public init(id: UUID, status: JobStatus, parameters: JobParameters, attempt: Int, framesDone: Int, framesTotal: Int,
                error: JobErrorInfo?, createdAt: Date, startedAt: Date?, finishedAt: Date?, resultsExpiredAt: Date? = nil,
                windows: [JobWindow] = [], source: JobSource = .frames, frameNames: FrameNames = .sourceIndices) {
        self.source = source
        self.frameNames = frameNames
        self.id = id
        self.status = status
        self.parameters = parameters
        self.attempt = attempt
        self.framesDone = framesDone
        self.framesTotal = framesTotal
        self.error = error
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.resultsExpiredAt = resultsExpiredAt
        self.windows = windows
    }
}

/// A validated-by-shape job submission: the uploaded tars or videos on disk and the parsed parameters.
public struct JobSubmission {
    /// The left and right uploads; for one packed `stereo` video (`layout` set) both are that file.
    public var left: URL
    public var right: URL
    /// `sbs` or `tb` for one packed `stereo` video; nil for a left and a right upload.
    public var layout: String? = nil
    /// The file names the client gave the parts, hints of what they hold (`left.mp4`, `right.tar`).
    public var leftFilename: String? = nil
    public var rightFilename: String? = nil
    public var parameters: JobParameters
    public var idempotencyKey: String?
    /// SHA-256 of the form payload, so a retried key can be told apart from a reused one.
    public var payloadDigest: String
    /// Frames per job and pixels per frame the backend must enforce while validating.
    public var frameLimits: FrameLimits
    /// The API key submitting, nil on an open server.
    public var owner: UUID? = nil
    /// The request body's size: what the key's daily upload allowance counts.
    public var uploadBytes: Int = 0
    /// Whether the client has gone: validating and storing stop then, and nothing is queued.
    public var clientGone: @Sendable () -> Bool = { false }
}

/// Storage behind the job routes. Implementations throw `APIError` for anything the client caused (bad frames,
/// an idempotency conflict, a bad cursor); any other error is reported as unavailable storage (503).
/// `owner` is the API key asking (nil on an open server): another key's job is treated as unknown.
public protocol JobBackend: AnyObject, Sendable {
    /// Validates the frames and queues a job; `created` is false when an idempotent retry matched a job.
    func submit(_ submission: JobSubmission) throws -> (job: JobSnapshot, created: Bool)
    /// The job with its windows: what a status poll shows, so one cheap read whatever the video's length.
    func job(id: UUID, owner: UUID?) throws -> JobSnapshot?
    /// Newest first, each job with its windows; `next` is an opaque cursor for the following page.
    func list(status: JobStatus?, limit: Int, after cursor: String?, owner: UUID?) throws -> (jobs: [JobSnapshot], next: String?)
    /// Nil when there is no such job; a finished job comes back unchanged.
    func cancel(id: UUID, owner: UUID?) throws -> JobSnapshot?
    func delete(id: UUID, owner: UUID?) throws -> Bool
    /// The job's result files, relative paths such as `disparity.npy` or `disparity/0.png`, sorted.
    func resultPaths(id: UUID) throws -> [String]
    func result(id: UUID, path: String) throws -> Data?
    /// An API key's limits in force and usage (nil for an unknown key), to refuse an upload before its body.
    func usage(owner: UUID) throws -> KeyUsage?
    func statusCounts() throws -> [JobStatus: Int]
    /// What the job transitions counted (finishes, run times), for the counters and histogram of /metrics.
    func jobCounters() throws -> JobCounters
    func ping() throws
    /// The job's windows and finishing step (empty for a job stored before windows, or a backend without them).
    func windows(id: UUID) throws -> [JobWindow]
    /// The stored frames of a job with per-frame rows and their files' sizes; nil for a job whose files are
    /// whole (stored before windows) or that has no frame stored yet.
    func frameLayout(id: UUID) throws -> FrameLayout?
    /// Writes bytes `bytes` of the job's `disparity.npy` from its per-frame rows, one frame at a time.
    func writeDisparityArray(id: UUID, layout: FrameLayout, bytes: Range<Int>, to sink: (Data) throws -> Void) throws
    /// A stored frame's disparity, by name, with the colour scale of the frames stored so far (the preview
    /// route); nil when the frame is not stored or the job's results are whole files.
    func storedDisparity(id: UUID, name: String) throws -> StoredDisparity?
    /// The size of a whole-file result stored in chunks (`video.mp4`, `color.mp4`, `points/NNNN.ply`), nil if none.
    func fileSize(id: UUID, path: String) throws -> Int?
    /// Writes bytes `bytes` of such a file, one chunk at a time.
    func writeFile(id: UUID, path: String, bytes: Range<Int>, to sink: (Data) throws -> Void) throws
}

/// Backends that store whole files only (the route tests' in-memory double) have no windows or frame rows.
extension JobBackend {
    public func windows(id: UUID) throws -> [JobWindow] { [] }
    public func frameLayout(id: UUID) throws -> FrameLayout? { nil }
    public func storedDisparity(id: UUID, name: String) throws -> StoredDisparity? { nil }
    public func writeDisparityArray(id: UUID, layout: FrameLayout, bytes: Range<Int>, to sink: (Data) throws -> Void) throws {
        preconditionFailure("a backend without frame rows has no frame layout")
    }
    public func fileSize(id: UUID, path: String) throws -> Int? { nil }
    public func writeFile(id: UUID, path: String, bytes: Range<Int>, to sink: (Data) throws -> Void) throws {
        preconditionFailure("a backend without chunked files has none to write")
    }
}
