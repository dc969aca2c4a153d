// The production `JobBackend`: PostgreSQL through JobQueue's `JobStore`, with frames validated before queueing.
import Foundation
import HTTPTransport
import JobQueue

/// Checks two uploaded tars and returns their frames unread, refusing bad uploads with an `APIError`.
public protocol FrameLoader: Sendable {
    func loadFrames(left: URL, right: URL, limits: FrameLimits) throws -> UploadedFrames
    /// The same, stopping (with an `APIError`) once `clientGone` says the client has left.
    func loadFrames(left: URL, right: URL, limits: FrameLimits, clientGone: @escaping @Sendable () -> Bool) throws -> UploadedFrames
}

extension FrameLoader {
    public func loadFrames(left: URL, right: URL, limits: FrameLimits, clientGone: @escaping @Sendable () -> Bool) throws -> UploadedFrames {
        try loadFrames(left: left, right: right, limits: limits)
    }
}

extension APIError {
    /// For a client that closed its connection before its answer: nobody reads it (nginx logs such as 499).
    static let clientGone = APIError(HTTPStatus(499, "Client Closed Request"), "client_gone", "the client closed the connection")
}

/// The checked frames of an upload, read from disk one pair per call so that a large upload is never held
/// in memory. Errors reading them are `APIError`s.
public protocol UploadedFrames {
    var count: Int { get }
    /// Frame `index` (0..<count, in time order) with both sides' PNG bytes.
    func frame(at index: Int) throws -> InputFrame
}

/// `JobBackend` over `JobStore`.
public final class JobStoreBackend: JobBackend, @unchecked Sendable {
    private let store: JobStore
    private let loader: FrameLoader

    public init(store: JobStore, loader: FrameLoader) {
        self.store = store
        self.loader = loader
    }

    public func submit(_ submission: JobSubmission) throws -> (job: JobSnapshot, created: Bool) {
        let clientGone = submission.clientGone
        let videos: CheckedVideos?
        if let layout = submission.layout {
            videos = try VideoUploadCheck.packed(submission.left, layout: layout, parameters: submission.parameters,
                                                 limits: submission.frameLimits)
        } else {
            let leftIsFrames = try VideoUploadCheck.isFrameArchive(submission.left, filename: submission.leftFilename)
            let rightIsFrames = try VideoUploadCheck.isFrameArchive(submission.right, filename: submission.rightFilename)
            guard leftIsFrames == rightIsFrames else {
                throw APIError.unprocessable("mixed_inputs", "left and right must both be videos or both be tars of frames; \(leftIsFrames ? "left" : "right") is a tar, the other is not")
            }
            videos = leftIsFrames ? nil : try VideoUploadCheck.sides(left: submission.left, right: submission.right,
                                                                      parameters: submission.parameters, limits: submission.frameLimits)
        }
        if let videos {
            // Stored as uploaded, in chunks; a worker's preparing step decodes them.
            let (record, created) = try store.enqueueVideo(parameters: submission.parameters, frameCount: videos.frameCount,
                                                           source: videos.source, videoRate: videos.videoRate, uploads: videos.parts,
                                                           idempotencyKey: submission.idempotencyKey,
                                                           payloadDigest: submission.payloadDigest, owner: submission.owner,
                                                           uploadBytes: submission.uploadBytes,
                                                           checkpoint: { if clientGone() { throw APIError.clientGone } })
            return (Self.snapshot(record), created)
        }
        let all = try loader.loadFrames(left: submission.left, right: submission.right, limits: submission.frameLimits,
                                        clientGone: clientGone)
        let frames = try SelectedFrames(all, selection: submission.parameters.selection)
        // A client that leaves while its frames are stored rolls the enqueue back: no job is left behind.
        let (record, created) = try store.enqueue(parameters: submission.parameters, frameCount: frames.count,
                                                  idempotencyKey: submission.idempotencyKey,
                                                  payloadDigest: submission.payloadDigest, owner: submission.owner,
                                                  uploadBytes: submission.uploadBytes,
                                                  frame: { index in
                                                      if clientGone() { throw APIError.clientGone }
                                                      return try frames.frame(at: index)
                                                  })
        // Read back with the windows its transaction planned (the job itself if it vanished meanwhile).
        return (try store.report(id: record.id).map { Self.snapshot(of: $0) } ?? Self.snapshot(record), created)
    }

    public func job(id: UUID, owner: UUID?) throws -> JobSnapshot? { try store.report(id: id, owner: owner).map { Self.snapshot(of: $0) } }

    public func list(status: JobStatus?, limit: Int, after cursor: String?,
                     owner: UUID?) throws -> (jobs: [JobSnapshot], next: String?) {
        let (reports, next) = try store.reports(status: status, limit: limit, after: cursor, owner: owner)
        return (reports.map { Self.snapshot(of: $0) }, next)
    }

    public func cancel(id: UUID, owner: UUID?) throws -> JobSnapshot? {
        guard let record = try store.cancel(id: id, owner: owner) else { return nil }
        return try store.report(id: id, owner: owner).map { Self.snapshot(of: $0) } ?? Self.snapshot(record)
    }
    public func delete(id: UUID, owner: UUID?) throws -> Bool { try store.delete(id: id, owner: owner) }
    public func resultPaths(id: UUID) throws -> [String] { try store.resultPaths(id: id) }
    public func result(id: UUID, path: String) throws -> Data? { try store.result(id: id, path: path) }
    public func usage(owner: UUID) throws -> KeyUsage? { try store.usage(of: owner) }
    public func statusCounts() throws -> [JobStatus: Int] { try store.statusCounts() }
    public func ping() throws { try store.ping() }

    public func jobCounters() throws -> JobCounters { try store.counters() }
    public func windows(id: UUID) throws -> [JobWindow] { try store.windows(id: id) }
    public func frameLayout(id: UUID) throws -> FrameLayout? { try store.frameLayout(id: id) }
    public func storedDisparity(id: UUID, name: String) throws -> StoredDisparity? { try store.storedDisparity(id: id, name: name) }
    public func fileSize(id: UUID, path: String) throws -> Int? { try store.fileSize(id: id, path: path) }
    public func writeFile(id: UUID, path: String, bytes: Range<Int>, to sink: (Data) throws -> Void) throws {
        try store.streamFile(id: id, path: path, bytes: bytes, sink: sink)
    }
    public func writeDisparityArray(id: UUID, layout: FrameLayout, bytes: Range<Int>, to sink: (Data) throws -> Void) throws {
        try store.streamDisparityArray(id: id, layout: layout, bytes: bytes, sink: sink)
    }

    static func snapshot(_ record: JobRecord) -> JobSnapshot {
        snapshot(of: JobReport(job: record, windows: []))
    }

    static func snapshot(of report: JobReport) -> JobSnapshot {
        let record = report.job
        return JobSnapshot(id: record.id, status: record.status, parameters: record.parameters, attempt: record.attempt,
                           framesDone: record.framesDone, framesTotal: record.framesTotal, error: record.error,
                           createdAt: record.createdAt, startedAt: record.startedAt, finishedAt: record.finishedAt,
                           resultsExpiredAt: record.resultsExpiredAt, windows: report.windows, source: record.source,
                           frameNames: report.frameNames)
    }
}

/// The frames of an uploaded tar pair that `start_frame`, `frame_step` and `frame_count` keep, numbered
/// 0..<count in the job and keeping their file names.
struct SelectedFrames: UploadedFrames {
    private let all: UploadedFrames
    private let indices: [Int]

    init(_ all: UploadedFrames, selection: FrameSelection) throws {
        self.all = all
        indices = selection.indices(of: all.count)
        guard !indices.isEmpty else {
            throw APIError.unprocessable("no_frames_selected", "start_frame \(selection.start) is past the last frame (the tars hold \(all.count))")
        }
    }

    var count: Int { indices.count }

    func frame(at index: Int) throws -> InputFrame {
        let frame = try all.frame(at: indices[index])
        return InputFrame(index: index, name: frame.name, left: frame.left, right: frame.right)
    }
}
