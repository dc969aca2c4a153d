// The JSON shapes of the job resource and the job list, as documented in openapi.yaml.
import Foundation
import JobQueue

/// `GET /jobs/{id}`: every field is always present, null when not yet known.
struct JobView: Encodable {
    struct URLs: Encodable {
        var job: String
        var cancel: String
        var resultTar: String?
        /// Every result file (only once the job has succeeded).
        var results: [String]?

        enum CodingKeys: String, CodingKey { case job = "self", cancel, resultTar = "result_tar", results }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(job, forKey: .job)
            try container.encode(cancel, forKey: .cancel)
            try container.encode(resultTar, forKey: .resultTar)
            try container.encode(results, forKey: .results)
        }
    }

    let job: JobSnapshot
    let urls: URLs
    /// The job's windows (nil in a list, where they would make every page large; the job's own JSON has them).
    var windows: [JobWindow]?
    /// From the windows; nil for a job stored before windows.
    var progress: JobProgress?
    /// Whether worker ids may be shown (not to keyed clients: the ids name the operator's machines).
    var showsWorkers = true
    /// `/jobs/{id}`, for the frame URL templates.
    var base = ""

    enum CodingKeys: String, CodingKey {
        case id, status, progress, createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
        case attempt, parameters, error, urls, results, resultsExpiredAt = "results_expired_at"
        case windows, framesReady = "frames_ready"
    }

    /// Where the job's results stand: `pending` until it finishes, `available` once it has succeeded,
    /// `none` after it failed or was cancelled, `expired` once retention deleted them.
    static func resultsState(_ job: JobSnapshot) -> String {
        if job.resultsExpiredAt != nil { return "expired" }
        switch job.status {
        case .queued, .running: return "pending"
        case .succeeded: return "available"
        case .failed, .cancelled: return "none"
        }
    }
    enum ProgressKeys: String, CodingKey {
        case framesDone = "frames_done", framesTotal = "frames_total", windowsDone = "windows_done", windowsTotal = "windows_total"
        case iterationsDone = "iterations_done", iterationsTotal = "iterations_total", etaSeconds = "eta_seconds"
    }
    enum WindowKeys: String, CodingKey { case index, firstFrame = "first_frame", frames, status, attempt, worker }
    enum FramesReadyKeys: String, CodingKey { case ranges, urlTemplates = "url_templates" }
    enum ParameterKeys: String, CodingKey {
        case iters, kernelSize = "kernel_size", focalPx = "focal_px", baselineM = "baseline_m"
        case startFrame = "start_frame", frameStep = "frame_step", frameCount = "frame_count", maxSize = "max_size", fps
        case cxPx = "cx_px", cyPx = "cy_px", maxDepthM = "max_depth_m", outputs, input, layout
    }
    enum ErrorKeys: String, CodingKey { case code, message }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(job.id.lowercased, forKey: .id)
        try container.encode(job.status.rawValue, forKey: .status)
        var progress = container.nestedContainer(keyedBy: ProgressKeys.self, forKey: .progress)
        try progress.encode(job.framesDone, forKey: .framesDone)
        try progress.encode(job.framesTotal, forKey: .framesTotal)
        try progress.encode(self.progress?.windowsDone, forKey: .windowsDone)
        try progress.encode(self.progress?.windowsTotal, forKey: .windowsTotal)
        try progress.encode(self.progress?.iterationsDone, forKey: .iterationsDone)
        try progress.encode(self.progress?.iterationsTotal, forKey: .iterationsTotal)
        try progress.encode(self.progress?.etaSeconds.map { $0.rounded() }, forKey: .etaSeconds)
        try container.encode(Self.timestamp(job.createdAt), forKey: .createdAt)
        try container.encode(job.startedAt.map(Self.timestamp), forKey: .startedAt)
        try container.encode(job.finishedAt.map(Self.timestamp), forKey: .finishedAt)
        try container.encode(job.attempt, forKey: .attempt)
        var parameters = container.nestedContainer(keyedBy: ParameterKeys.self, forKey: .parameters)
        try parameters.encode(job.parameters.iters, forKey: .iters)
        try parameters.encode(job.parameters.kernelSize, forKey: .kernelSize)
        try parameters.encode(job.parameters.focalPx, forKey: .focalPx)
        try parameters.encode(job.parameters.baselineM, forKey: .baselineM)
        try parameters.encode(job.parameters.selection.start, forKey: .startFrame)
        try parameters.encode(job.parameters.selection.step, forKey: .frameStep)
        try parameters.encode(job.parameters.selection.count, forKey: .frameCount)
        try parameters.encode(job.parameters.maxSize, forKey: .maxSize)
        try parameters.encode(job.parameters.fps, forKey: .fps)
        try parameters.encode(job.parameters.cxPx, forKey: .cxPx)
        try parameters.encode(job.parameters.cyPx, forKey: .cyPx)
        try parameters.encode(job.parameters.maxDepthM, forKey: .maxDepthM)
        // The kinds in force (the defaults spelled out when `outputs` was not given), in the documented order.
        try parameters.encode(ResultKind.allCases.filter(job.parameters.resultKinds.contains).map(\.rawValue), forKey: .outputs)
        // `frames` (tars), `videos` (left and right files) or `stereo` (one packed file, with its layout).
        try parameters.encode(job.source == .frames ? "frames" : job.source == .videos ? "videos" : "stereo", forKey: .input)
        try parameters.encode(job.source == .sbs || job.source == .tb ? job.source.rawValue : nil, forKey: .layout)
        if let error = job.error {
            var nested = container.nestedContainer(keyedBy: ErrorKeys.self, forKey: .error)
            try nested.encode(error.code, forKey: .code)
            try nested.encode(error.message, forKey: .message)
        } else {
            try container.encodeNil(forKey: .error)
        }
        try container.encode(Self.resultsState(job), forKey: .results)
        try container.encode(job.resultsExpiredAt.map(Self.timestamp), forKey: .resultsExpiredAt)
        try container.encode(urls, forKey: .urls)
        if let windows {
            var list = container.nestedUnkeyedContainer(forKey: .windows)
            for window in windows where window.kind == .window {
                var item = list.nestedContainer(keyedBy: WindowKeys.self)
                try item.encode(window.index, forKey: .index)
                try item.encode(window.inputFrames.lowerBound, forKey: .firstFrame)
                try item.encode(window.inputFrames.count, forKey: .frames)
                try item.encode(window.status.rawValue, forKey: .status)
                try item.encode(window.attempt, forKey: .attempt)
                try item.encode(showsWorkers ? window.workerId : nil, forKey: .worker)
            }
        } else {
            try container.encodeNil(forKey: .windows)
        }
        // Which frames' per-frame files can be downloaded now, while the job runs too: half-open ranges of
        // input frame indices, and the URL of each file with {name} the input frame's name without `.png`.
        var ready = container.nestedContainer(keyedBy: FramesReadyKeys.self, forKey: .framesReady)
        let ranges = job.resultsExpiredAt == nil ? (self.progress?.framesReady ?? []) : []
        try ready.encode(ranges.map { [$0.lowerBound, $0.upperBound] }, forKey: .ranges)
        var templates = ["disparity": "\(base)/disparity/{name}.png"]
        if job.parameters.focalPx != nil { templates["depth"] = "\(base)/depth/{name}.png" }
        try ready.encode(templates, forKey: .urlTemplates)
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// `GET /jobs`: a page of jobs, newest first, and the cursor of the next page (null on the last).
struct JobListView: Encodable {
    let jobs: [JobView]
    let nextCursor: String?

    enum CodingKeys: String, CodingKey { case jobs, nextCursor = "next_cursor" }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jobs, forKey: .jobs)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
