// The REST API of the service: routing, job submission from a streamed upload, job resources, results,
// health and metrics, as an application of the HTTP transport. Storage is reached only through `JobBackend`.
import Foundation
import HTTPTransport
import JobQueue
import Logging
import Media

/// Limits on what one job may carry, enforced while validating its frames.
public struct FrameLimits: Sendable, Equatable {
    public var maxFrames = 1000
    public var maxPixelsPerFrame = 4096 * 4096

    public init() {}
}

/// Settings of the job API.
public struct JobsAPIConfiguration: Sendable {
    /// Where uploads are streamed before validation; files are deleted when the request ends.
    public var uploadDirectory = URL(fileURLWithPath: NSTemporaryDirectory())
    public var maxUploadBytes = 4 << 30
    public var maxSmallBodyBytes = 64 * 1024
    public var frameLimits = FrameLimits()
    public var defaultIters = 20
    public var defaultKernelSize = 20
    /// Retry-After of a 429 for too many queued jobs. A job runs for tens of seconds at the very least on a
    /// CPU, so asking again sooner than this rarely finds a free slot; much later wastes the client's time.
    public var queuedJobsRetryAfterSeconds = 30

    public init() {}
}

/// A request body as the job routes receive it: the upload form of `POST /jobs`, or the small body of any
/// other route (read and ignored).
public enum JobsRequestBody {
    case bytes([UInt8])
    case form(UploadedForm)
}

/// The job API as an `HTTPApplication`.
public final class JobsHTTPApplication: HTTPApplication, @unchecked Sendable {
    let backend: JobBackend
    /// Nil: every request is served as on an open server.
    private let authenticator: RequestAuthenticator?
    /// Signs and checks result URLs (`SignedURLs.swift`).
    let signer: URLSigner
    private let configuration: JobsAPIConfiguration
    private let logger: Logger
    private let counters = RequestCounters()
    /// The status poll's answers in memory (`JobPollCache`); nil: every poll reads the job store.
    private let pollCache: JobPollCache?
    /// The time job views are rendered at (their ETA): the tests move it.
    private let now: @Sendable () -> Date
    private static let uploadSchema = FormSchema(fileParts: ["left", "right", "stereo"], fieldParts: [
        "iters", "kernel_size", "focal_px", "baseline_m", "layout", "start_frame", "frame_step", "frame_count", "max_size",
        "fps", "cx_px", "cy_px", "max_depth_m", "outputs",
    ])

    /// `pollCache` must be fed by a `ChangeListener` on the backend's database (`JobPollCache.apply`).
    public init(backend: JobBackend, configuration: JobsAPIConfiguration = JobsAPIConfiguration(),
                authenticator: RequestAuthenticator? = nil, signer: URLSigner = .ephemeral(),
                pollCache: JobPollCache? = nil, now: @escaping @Sendable () -> Date = { Date() },
                logger: Logger = Logger(label: "dynstereo.api")) {
        self.backend = backend
        self.pollCache = pollCache
        self.now = now
        self.authenticator = authenticator
        self.signer = signer
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: - Routing

    /// A matched route: the label used in metrics and the handler's arguments.
    enum Route: Equatable {
        case health, ready, metrics, openAPI
        case page, asset(String)
        case submit, list
        case job(UUID), cancel(UUID), delete(UUID)
        case resultTar(UUID), result(UUID, String)
        case preview(UUID, String), signURLs(UUID)

        var label: String {
            switch self {
            case .health: return "GET /healthz"
            case .ready: return "GET /readyz"
            case .metrics: return "GET /metrics"
            case .openAPI: return "GET /openapi.yaml"
            case .page: return "GET /"
            case .asset: return "GET /web/{file}"
            case .preview: return "GET /jobs/{id}/preview/{frame}"
            case .signURLs: return "POST /jobs/{id}/signed-urls"
            case .submit: return "POST /jobs"
            case .list: return "GET /jobs"
            case .job: return "GET /jobs/{id}"
            case .cancel: return "POST /jobs/{id}/cancel"
            case .delete: return "DELETE /jobs/{id}"
            case .resultTar: return "GET /jobs/{id}/result.tar"
            case .result: return "GET /jobs/{id}/{result}"
            }
        }

        /// Probes and documentation stay reachable without a key.
        var needsKey: Bool {
            switch self {
            case .health, .ready, .metrics, .openAPI, .page, .asset: return false
            default: return true
            }
        }

        /// Results a browser loads by URL (media, images, downloads) also open with a signed URL.
        var acceptsSignedURL: Bool {
            switch self {
            case .resultTar, .result, .preview: return true
            default: return false
            }
        }
    }

    /// Matches method and path; a known path with the wrong method is a 405 naming the allowed ones.
    /// Segments are percent-decoded: a frame's name (a tar member's) may hold any character a URL escapes.
    static func route(method: String, path: Substring) -> Result<Route, APIError> {
        guard let segments = pathSegments(path) else { return .failure(.badRequest("the path '\(path)' is not valid percent-encoding")) }
        func only(_ allowed: [String: Route]) -> Result<Route, APIError> {
            let effective = method == "HEAD" ? "GET" : method
            if let route = allowed[effective] { return .success(route) }
            let allow = allowed.keys.sorted().joined(separator: ", ")
            return .failure(APIError(.methodNotAllowed, "method_not_allowed", "\(method) is not allowed here; use \(allow)",
                                     headers: [("Allow", allow)]))
        }
        func jobID(_ text: String) -> UUID? { Self.canonicalUUID(text) ?? UUID(uuidString: text) }
        switch segments.count {
        case 1:
            switch segments[0] {
            case "": return only(["GET": .page])
            case "healthz": return only(["GET": .health])
            case "readyz": return only(["GET": .ready])
            case "metrics": return only(["GET": .metrics])
            case "openapi.yaml": return only(["GET": .openAPI])
            case "jobs": return only(["GET": .list, "POST": .submit])
            default: break
            }
        case 2 where segments[0] == "web":
            return only(["GET": .asset(segments[1])])
        case 2 where segments[0] == "jobs":
            guard let id = jobID(segments[1]) else { return .failure(.notFound("no job '\(segments[1])'")) }
            return only(["GET": .job(id), "DELETE": .delete(id)])
        case 3 where segments[0] == "jobs":
            guard let id = jobID(segments[1]) else { return .failure(.notFound("no job '\(segments[1])'")) }
            switch segments[2] {
            case "cancel": return only(["POST": .cancel(id)])
            case "signed-urls": return only(["POST": .signURLs(id)])
            case "result.tar": return only(["GET": .resultTar(id)])
            default: return only(["GET": .result(id, segments[2])])
            }
        case 4 where segments[0] == "jobs":
            guard let id = jobID(segments[1]) else { return .failure(.notFound("no job '\(segments[1])'")) }
            if segments[2] == "preview", segments[3].hasSuffix(".png"), segments[3].count > 4 {
                return only(["GET": .preview(id, String(segments[3].dropLast(4)))])
            }
            return only(["GET": .result(id, segments[2] + "/" + segments[3])])
        default:
            break
        }
        return .failure(.notFound("no route for \(path)"))
    }

    /// The path's segments after the leading `/`, each percent-decoded; nil when one is not valid
    /// percent-encoding. Split by bytes, and decoded through Foundation only where a segment holds a `%`:
    /// routing runs three times per request (prepare, respond, the metrics label), and splitting by Character
    /// with Foundation's decoding of every segment was a quarter of a status poll's CPU.
    static func pathSegments(_ path: Substring) -> [String]? {
        var segments: [String] = []
        for bytes in path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst() {
            let segment = String(decoding: bytes, as: UTF8.self)
            guard let decoded = bytes.contains(UInt8(ascii: "%")) ? segment.removingPercentEncoding : segment else { return nil }
            segments.append(decoded)
        }
        return segments
    }

    /// A UUID in its usual 8-4-4-4-12 hex form (either case), read by hand; nil for anything else, which
    /// `UUID(uuidString:)` then reads (it goes through sscanf, a visible share of a status poll's CPU).
    static func canonicalUUID(_ text: String) -> UUID? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        var high: UInt8?
        var position = 0
        for byte in text.utf8 {
            defer { position += 1 }
            if position == 8 || position == 13 || position == 18 || position == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        guard position == 36, bytes.count == 16 else { return nil }
        let b = bytes
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    // MARK: - HTTPApplication

    /// The asking key for a route that needs one (nil when open or not needed); throws 401/403.
    private func owner(_ route: Route, _ head: HTTPRequestHead) throws -> UUID? {
        guard route.needsKey, let authenticator else { return nil }
        if route.acceptsSignedURL, head.query["signature"] != nil { return try signedOwner(head, authenticator: authenticator) }
        return try authenticator.owner(authorization: head.headers["Authorization"])
    }

    public func prepare(_ head: HTTPRequestHead) -> RequestPreparation<JobsRequestBody> {
        let route = Self.route(method: head.method, path: head.path)
        var asking: UUID?
        if case .success(.submit) = route {
            // Refused before the body is read, so an unauthenticated upload costs nothing. Other routes carry
            // at most a small body and are checked on their handler thread (`respond`), not on this loop,
            // which serves every connection.
            do { asking = try owner(.submit, head) } catch { return .reject(response(for: error)) }
        }
        switch route {
        case let .failure(error):
            return .reject(error.response)
        case .success(.submit):
            guard let contentType = head.headers["Content-Type"] else {
                return .reject(APIError(.unsupportedMediaType, "unsupported_media_type", "POST /jobs takes multipart/form-data").response)
            }
            if head.framing == .none {
                return .reject(APIError.unprocessable("missing_frames", "the form needs 'left' and 'right' tar parts").response)
            }
            do {
                let allowance = try asking.flatMap { try uploadAllowance(owner: $0, head: head) }
                let sink = try MultipartUploadSink(contentType: contentType, schema: Self.uploadSchema,
                                                   directory: configuration.uploadDirectory, allowance: allowance)
                return .accept(sink, maxBytes: configuration.maxUploadBytes)
            } catch {
                return .reject(response(for: error))
            }
        case .success:
            return .accept(MemoryBodySink { .bytes($0) }, maxBytes: configuration.maxSmallBodyBytes)
        }
    }

    /// Refuses a submission the key's limits already rule out, before its body is read: a key at its
    /// queued-jobs limit (unless the request carries an Idempotency-Key, which may replay an existing job),
    /// or a Content-Length above what the key may still upload today. Otherwise returns the remaining
    /// allowance, enforced while the body streams. The enqueue transaction decides for good.
    private func uploadAllowance(owner: UUID, head: HTTPRequestHead) throws -> ByteAllowance? {
        guard let usage = try backend.usage(owner: owner) else { return nil }
        if usage.atQueuedJobsLimit, head.headers["Idempotency-Key"] == nil, let limit = usage.limits.maxQueuedJobs {
            throw JobQueueError.queuedJobsLimit(limit: limit)
        }
        guard let remaining = usage.remainingUploadBytes, let limit = usage.limits.maxUploadBytesPerDay else { return nil }
        if case let .contentLength(length) = head.framing, length > remaining {
            throw JobQueueError.dailyUploadLimit(limit: limit, used: usage.uploadedBytesToday, requested: length)
        }
        let message = "this upload passed the \(remaining) bytes this API key may still upload today (its limit is \(limit) bytes per UTC day)"
        return ByteAllowance(bytes: remaining, refusal: Self.dailyUploadRefusal(message))
    }

    private static func dailyUploadRefusal(_ message: String) -> APIError {
        APIError(.tooManyRequests, "daily_upload_limit", message, headers: [("Retry-After", "\(secondsUntilUTCMidnight())")])
    }

    /// Seconds from `now` to the next midnight UTC, when daily upload allowances start again (at least 1).
    static func secondsUntilUTCMidnight(now: Date = Date()) -> Int {
        let day = 86_400.0
        let seconds = now.timeIntervalSince1970
        return max(1, Int((day - seconds.truncatingRemainder(dividingBy: day)).rounded(.up)))
    }

    /// The client-facing form of a queue error the client caused; nil for storage failures.
    private func apiError(for error: JobQueueError) -> APIError? {
        switch error {
        case .idempotencyConflict: return APIError.unprocessable("idempotency_conflict", error.description)
        case .invalidParameters: return APIError.unprocessable("invalid_parameters", error.description)
        case .invalidInput: return APIError.unprocessable("invalid_frames", error.description)
        case .invalidCursor: return APIError.badRequest(error.description)
        case .queuedJobsLimit:
            return APIError(.tooManyRequests, "too_many_queued_jobs", error.description,
                            headers: [("Retry-After", "\(configuration.queuedJobsRetryAfterSeconds)")])
        case .dailyUploadLimit: return Self.dailyUploadRefusal(error.description)
        default: return nil
        }
    }

    public func respond(to request: HTTPRequest<JobsRequestBody>) -> HTTPResponse {
        do {
            switch Self.route(method: request.head.method, path: request.head.path) {
            case let .failure(error): return error.response
            case let .success(route): return try handle(route, request, owner: try owner(route, request.head))
            }
        } catch {
            return response(for: error)
        }
    }

    public func responded(to head: HTTPRequestHead?, status: HTTPStatus) {
        let label: String
        if let head, case let .success(route) = Self.route(method: head.method, path: head.path) {
            label = route.label
        } else {
            label = "unmatched"
        }
        counters.record(route: label, code: status.code)
    }

    public func response(for error: Error) -> HTTPResponse {
        if let error = error as? APIError { return error.response }
        // The transport's own refusals (malformed requests, timeouts) get the API's JSON error body.
        if let error = error as? HTTPTransportError { return APIError(error.status, error.code, error.description).response }
        if let error = error as? JobQueueError, let refusal = apiError(for: error) { return refusal.response }
        // The details (the database's host and port, its message) go to the log, not to the client.
        logger.error("storage error", metadata: ["error": "\(error)"])
        return APIError(.unavailable, "storage_unavailable", "the job store is unavailable; try again shortly").response
    }

    // MARK: - Handlers

    private func handle(_ route: Route, _ request: HTTPRequest<JobsRequestBody>, owner: UUID?) throws -> HTTPResponse {
        switch route {
        case .health:
            return json(.ok, ["status": "ok"])
        case .ready:
            do {
                try backend.ping()
                return json(.ok, ["status": "ready"])
            } catch {
                logger.warning("readiness check failed", metadata: ["error": "\(error)"])
                return APIError(.unavailable, "not_ready", "the database does not answer").response
            }
        case .metrics:
            let text = MetricsText.render(statusCounts: try backend.statusCounts(), counters: try backend.jobCounters(),
                                          requests: counters.snapshot(), pollCache: pollCache?.statistics)
            return HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4", bytes: Array(text.utf8))
        case .openAPI:
            return HTTPResponse(status: .ok, contentType: "application/yaml", bytes: Array(OpenAPIDocument.yaml.utf8))
        case .page:
            return try WebPage.response(WebPage.indexName)
        case let .asset(name):
            return try WebPage.response(name)
        case let .preview(id, name):
            return try preview(id, name: name, owner: owner)
        case let .signURLs(id):
            return try signURLs(id, body: request.body, owner: owner)
        case .submit:
            return try submit(request, owner: owner)
        case .list:
            return try list(request.head.query, owner: owner)
        case let .job(id):
            // The poll: from memory while the job's rows stay as they are, else one read of the job with its
            // windows, nothing per frame or file.
            let now = self.now()
            if let pollCache {
                guard let body = try pollCache.body(id: id, owner: owner, now: now, read: { try backend.job(id: id, owner: owner) },
                                                    render: { try view($0, owner: owner, now: $1).bytes })
                else { throw APIError.notFound("no job \(id.lowercased)") }
                return json(.ok, body)
            }
            guard let job = try backend.job(id: id, owner: owner) else { throw APIError.notFound("no job \(id.lowercased)") }
            return json(.ok, try view(job, owner: owner, now: now).bytes)
        case let .cancel(id):
            // Dropped whatever the outcome (a cancel lost at COMMIT may have committed), before the answer, so
            // the client's next poll reads what the cancel did.
            defer { pollCache?.drop(id) }
            guard let job = try backend.cancel(id: id, owner: owner) else { throw APIError.notFound("no job \(id.lowercased)") }
            return json(.ok, try view(job, owner: owner).bytes)
        case let .delete(id):
            defer { pollCache?.drop(id) }
            guard try backend.delete(id: id, owner: owner) else { throw APIError.notFound("no job \(id.lowercased)") }
            return HTTPResponse(status: .noContent)
        case let .resultTar(id):
            let paths = try finishedResultPaths(id, owner: owner)
            let backend = self.backend
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/x-tar")
            headers.add(name: "Content-Disposition", value: "attachment; filename=\"\(id.lowercased).tar\"")
            if let layout = try backend.frameLayout(id: id), let tar = TarLayout(files: layout.files) {
                return try ranged(request, size: tar.size, headers: headers) { range, writer in
                    try tar.write(range, to: { try writer.write([UInt8]($0)) }) { member, within in
                        if member.path == FrameFiles.disparityArray {
                            try backend.writeDisparityArray(id: id, layout: layout, bytes: within) { try writer.write([UInt8]($0)) }
                        } else if layout.wholeFiles.contains(where: { $0.path == member.path }) {
                            try backend.writeFile(id: id, path: member.path, bytes: within) { try writer.write([UInt8]($0)) }
                        } else {
                            // One frame's file: small, read whole.
                            guard let data = try backend.result(id: id, path: member.path), data.count == member.size else {
                                throw APIError.notFound("job \(id.lowercased) lost '\(member.path)' while it was sent")
                            }
                            try writer.write([UInt8](data[(data.startIndex + within.lowerBound)..<(data.startIndex + within.upperBound)]))
                        }
                    }
                }
            }
            return HTTPResponse(status: .ok, headers: headers, body: .stream { writer in
                // One result in memory at a time; a result deleted meanwhile is skipped.
                let archive = TarWriter(sink: { try writer.write([UInt8]($0)) })
                for path in paths {
                    guard let data = try backend.result(id: id, path: path) else { continue }
                    try archive.addFile(path: path, contents: data)
                }
                try archive.finish()
            })
        case let .result(id, path):
            if let frame = try storedFrameWhileUnfinished(id, path: path, owner: owner) { return frame }
            let paths = try finishedResultPaths(id, owner: owner)
            if path == FrameFiles.disparityArray, let layout = try backend.frameLayout(id: id) {
                let backend = self.backend
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: ResultFiles.contentType(of: path))
                return try ranged(request, size: layout.npySize, headers: headers) { range, writer in
                    try backend.writeDisparityArray(id: id, layout: layout, bytes: range) { try writer.write([UInt8]($0)) }
                }
            }
            if paths.contains(path), let size = try backend.fileSize(id: id, path: path) {
                // video.mp4, color.mp4, points/NNNN.ply: streamed from their chunks, with ranges (browsers seek with them).
                let backend = self.backend
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: Self.contentType(of: path))
                return try ranged(request, size: size, headers: headers) { range, writer in
                    try backend.writeFile(id: id, path: path, bytes: range) { try writer.write([UInt8]($0)) }
                }
            }
            guard paths.contains(path), let data = try backend.result(id: id, path: path) else {
                throw APIError.notFound("job \(id.lowercased) has no result '\(path)'")
            }
            return HTTPResponse(status: .ok, contentType: ResultFiles.contentType(of: path), bytes: Array(data))
        }
    }

    /// The media type of a result file.
    static func contentType(of path: String) -> String {
        if path.hasSuffix(".mp4") { return "video/mp4" }
        if path.hasSuffix(".ply") { return "application/x-ply" }
        return ResultFiles.contentType(of: path)
    }

    /// A per-frame file (`disparity/NNNN.png`, `depth/NNNN.png`) of a job that has not succeeded: the stored
    /// frame (of a running job, or of one that failed or was cancelled), or 409 `not_ready` with a
    /// Retry-After while the job may still store it (404 for a name none of its frames has). Nil for anything
    /// else, which the finished routes answer.
    func storedFrameWhileUnfinished(_ id: UUID, path: String, owner: UUID?) throws -> HTTPResponse? {
        guard let (kind, name) = FrameFiles.parse(path), kind == .disparity || kind == .depth,
              let job = try backend.job(id: id, owner: owner), job.status != .succeeded, job.resultsExpiredAt == nil
        else { return nil }
        if let rendered = ResultKind(rawValue: kind.rawValue), !job.parameters.resultKinds.contains(rendered) {
            throw APIError.notFound("job \(id.lowercased) renders no \(kind.rawValue)/ files (its outputs leave them out)")
        }
        if let data = try backend.result(id: id, path: path) {
            return HTTPResponse(status: .ok, contentType: ResultFiles.contentType(of: path), bytes: Array(data))
        }
        guard !job.status.isTerminal, !job.windows.isEmpty else { return nil }
        // A name none of the job's frames has will never be stored: 404, not a wait.
        if job.frameNames.include(name, frames: job.framesTotal, selection: job.parameters.selection) == false {
            throw APIError.notFound("job \(id.lowercased) has no frame named '\(name)'")
        }
        let progress = JobProgress(iters: job.parameters.iters, status: job.status, startedAt: job.startedAt, windows: job.windows, now: now())
        // About one window's time at the job's own speed, within 1 s ... 60 s.
        let perWindow = progress.etaSeconds.map { $0 / Double(max(1, progress.windowsTotal - progress.windowsDone + 1)) } ?? 10
        let retryAfter = Int(min(60, max(1, perWindow.rounded(.up))))
        throw APIError(.conflict, "not_ready", "job \(id.lowercased) has not stored '\(path)' yet; \(progress.windowsDone) of \(progress.windowsTotal) windows are done",
                       headers: [("Retry-After", "\(retryAfter)")])
    }

    /// A body of `size` bytes, or the part a `Range: bytes=...` header asks for (206 with Content-Range; 416
    /// when it lies outside). Several ranges, or a header this does not parse, get the whole body (RFC 9110
    /// lets a server ignore Range). `produce` writes exactly the bytes of the range it is given.
    private func ranged(_ request: HTTPRequest<JobsRequestBody>, size: Int, headers: HTTPHeaders,
                        produce: @escaping (Range<Int>, ResponseBodyWriter) throws -> Void) throws -> HTTPResponse {
        var headers = headers
        headers.add(name: "Accept-Ranges", value: "bytes")
        guard let header = request.head.headers["Range"] else {
            return HTTPResponse(status: .ok, headers: headers, body: .sized(length: size) { try produce(0..<size, $0) })
        }
        switch ByteRange.parse(header, size: size) {
        case .none:
            return HTTPResponse(status: .ok, headers: headers, body: .sized(length: size) { try produce(0..<size, $0) })
        case .unsatisfiable:
            throw APIError(HTTPStatus(416, "Range Not Satisfiable"), "range_not_satisfiable",
                           "the range '\(header)' lies outside the \(size) bytes", headers: [("Content-Range", "bytes */\(size)")])
        case let .range(range):
            headers.add(name: "Content-Range", value: "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(size)")
            return HTTPResponse(status: HTTPStatus(206, "Partial Content"), headers: headers,
                                body: .sized(length: range.count) { try produce(range, $0) })
        }
    }

    /// The result paths of a succeeded job; 404 for an unknown job, 410 once retention deleted its results,
    /// 409 with the status for any other.
    private func finishedResultPaths(_ id: UUID, owner: UUID?) throws -> [String] {
        guard let job = try backend.job(id: id, owner: owner) else { throw APIError.notFound("no job \(id.lowercased)") }
        if let expired = job.resultsExpiredAt {
            throw APIError(.gone, "results_expired",
                           "the inputs and results of job \(id.lowercased) were deleted by retention at \(JobView.timestamp(expired))")
        }
        guard job.status == .succeeded else {
            throw APIError(.conflict, "job_not_succeeded", "job \(id.lowercased) is \(job.status.rawValue); results exist once it has succeeded")
        }
        return try backend.resultPaths(id: id)
    }

    private func submit(_ request: HTTPRequest<JobsRequestBody>, owner: UUID?) throws -> HTTPResponse {
        guard case let .form(form) = request.body else {
            throw APIError.unprocessable("missing_frames", "the form needs 'left' and 'right' tar parts")
        }
        let left: UploadedFile, right: UploadedFile
        let layout = form.fields["layout"]?.trimmingCharacters(in: .whitespaces)
        if let stereo = form.files["stereo"] {
            guard form.files["left"] == nil, form.files["right"] == nil else {
                throw APIError.unprocessable("invalid_parameters", "send either 'stereo' (with 'layout') or 'left' and 'right', not both")
            }
            guard layout != nil else { throw APIError.unprocessable("invalid_parameters", "'stereo' needs 'layout' sbs or tb") }
            left = stereo
            right = stereo
        } else {
            guard let l = form.files["left"], let r = form.files["right"] else {
                throw APIError.unprocessable("missing_frames", "the form needs both 'left' and 'right' parts (tars of frames or videos), or 'stereo' with 'layout'")
            }
            guard layout == nil else { throw APIError.unprocessable("invalid_parameters", "'layout' goes with 'stereo', not with 'left' and 'right'") }
            left = l
            right = r
        }
        let key = request.head.headers["Idempotency-Key"]
        if let key, key.isEmpty || key.utf8.count > 200 {
            throw APIError.badRequest("Idempotency-Key must be 1 to 200 characters")
        }
        let parameters = try Self.parameters(form.fields, defaults: configuration)
        var submission = JobSubmission(left: left.url, right: right.url, layout: layout, leftFilename: left.clientFilename,
                                       rightFilename: right.clientFilename, parameters: parameters, idempotencyKey: key,
                                       payloadDigest: form.payloadDigest, frameLimits: configuration.frameLimits,
                                       owner: owner, uploadBytes: form.bodyBytes)
        submission.clientGone = request.clientGone
        let (job, created) = try backend.submit(submission)
        pollCache?.drop(job.id)
        var response = json(created ? .accepted : .ok, try view(job, owner: owner).bytes)
        response.headers.add(name: "Location", value: "/jobs/\(job.id.lowercased)")
        // The temp files live until here: `form` is released when this request's handler returns.
        withExtendedLifetime(form) {}
        return response
    }

    static func parameters(_ fields: [String: String], defaults: JobsAPIConfiguration) throws -> JobParameters {
        func integer(_ name: String, _ fallback: Int) throws -> Int {
            guard let text = fields[name] else { return fallback }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw APIError.unprocessable("invalid_parameters", "\(name) must be an integer, got '\(text)'")
            }
            return value
        }
        func number(_ name: String) throws -> Double? {
            guard let text = fields[name] else { return nil }
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                throw APIError.unprocessable("invalid_parameters", "\(name) must be a number, got '\(text)'")
            }
            return value
        }
        func optionalInteger(_ name: String) throws -> Int? {
            guard fields[name] != nil else { return nil }
            return try integer(name, 0)
        }
        var outputs: Set<ResultKind>?
        if let list = fields["outputs"] {
            do {
                // Parsed for names only: the calibration rule is `validate`'s, like every other.
                outputs = try ResultKind.parse(list, calibrated: true, surface: .http)
            } catch {
                throw APIError.unprocessable("invalid_parameters", error.message)
            }
        }
        let parameters = JobParameters(iters: try integer("iters", defaults.defaultIters),
                                       kernelSize: try integer("kernel_size", defaults.defaultKernelSize),
                                       focalPx: try number("focal_px"), baselineM: try number("baseline_m"),
                                       selection: FrameSelection(start: try integer("start_frame", 0), step: try integer("frame_step", 1),
                                                                 count: try optionalInteger("frame_count")),
                                       maxSize: try optionalInteger("max_size"), fps: try number("fps"),
                                       cxPx: try number("cx_px"), cyPx: try number("cy_px"), maxDepthM: try number("max_depth_m"),
                                       outputs: outputs)
        do {
            try parameters.validate()
        } catch {
            throw APIError.unprocessable("invalid_parameters", error.message(for: .http))
        }
        return parameters
    }

    private func list(_ query: [String: String], owner: UUID?) throws -> HTTPResponse {
        var status: JobStatus?
        if let text = query["status"] {
            guard let parsed = JobStatus(rawValue: text) else {
                throw APIError.badRequest("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = parsed
        }
        var limit = 50
        if let text = query["limit"] {
            guard let parsed = Int(text), (1...1000).contains(parsed) else { throw APIError.badRequest("limit must be 1 to 1000") }
            limit = parsed
        }
        // An empty cursor is no cursor: the first page (what a client that pastes an empty next_cursor means).
        let cursor = query["cursor"].flatMap { $0.isEmpty ? nil : $0 }
        let (jobs, next) = try backend.list(status: status, limit: limit, after: cursor, owner: owner)
        var views: [JobView] = []
        for job in jobs {
            var item = try view(job, owner: owner)
            item.listsWindows = false
            views.append(item)
        }
        return json(.ok, JobListView(jobs: views, nextCursor: next).bytes)
    }

    // MARK: - Views

    /// `owner` non-nil (a keyed client) hides the windows' worker ids. No statement runs for a job with
    /// windows: what the view shows came with the job. A succeeded job stored before windows lists its whole
    /// files (one read of their paths).
    private func view(_ job: JobSnapshot, owner: UUID? = nil, now: Date? = nil) throws -> JobView {
        let base = "/jobs/\(job.id.lowercased)"
        var results: [String]?
        let available = job.status == .succeeded && job.resultsExpiredAt == nil
        if available {
            results = try job.windows.isEmpty ? backend.resultPaths(id: job.id).map { "\(base)/\($0)" }
                                              : Self.wholeVideoFiles(job).map { "\(base)/\($0)" }
        }
        var view = JobView(job: job, urls: JobView.URLs(job: base, cancel: "\(base)/cancel",
                                                        resultTar: available ? "\(base)/result.tar" : nil,
                                                        results: results))
        view.base = base
        view.showsWorkers = owner == nil
        view.now = now ?? self.now()
        return view
    }

    /// The whole-video files of a succeeded job with windows, known from its parameters alone (no statement):
    /// `disparity.npy` always, and the MP4s its `outputs` asked for (the finishing step rendered them).
    static func wholeVideoFiles(_ job: JobSnapshot) -> [String] {
        let asked = job.parameters.resultKinds
        return [FrameFiles.disparityArray] + [(ResultKind.videoMP4, "video.mp4"), (ResultKind.colorMP4, "color.mp4")]
            .filter { asked.contains($0.0) }.map(\.1)
    }

    private func json(_ status: HTTPStatus, _ bytes: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", bytes: bytes)
    }

    private func json<T: Encodable>(_ status: HTTPStatus, _ value: T) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", bytes: JSON.encode(value))
    }
}

extension UUID {
    /// The lowercase form used in URLs and JSON.
    var lowercased: String { uuidString.lowercased() }
}
