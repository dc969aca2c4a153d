// The JSON shapes of the job resource and the job list, as documented in openapi.yaml.
import Foundation
import JobQueue

/// `GET /jobs/{id}` and each job of `GET /jobs`: every field is always present, null when not yet known,
/// except `frames_ready.names`, absent for frames named by their source index. Its size grows with the job's
/// windows (a few per hundred frames), never with its files: which frames are ready is a list of ranges and
/// URL templates, not a URL per file. Only frames with names of their own add their names (one each, in the
/// job's own JSON only).
struct JobView {
    struct URLs {
        var job: String
        var cancel: String
        var resultTar: String?
        /// Once the job has succeeded: its whole-video files (`disparity.npy`; each frame's files are in
        /// `frames_ready`), or every file of a job stored before windows, whose results are whole files.
        var results: [String]?
    }

    let job: JobSnapshot
    let urls: URLs
    /// Whether `windows` lists them (the job's own JSON) or is null (a list, where they would make every page
    /// large; the summary in `progress` and `frames_ready` is there either way).
    var listsWindows = true
    /// Whether worker ids may be shown (not to keyed clients: the ids name the operator's machines).
    var showsWorkers = true
    /// `/jobs/{id}`, for the frame URL templates.
    var base = ""

    /// The time the view shows the job at: only `progress.eta_seconds` depends on it.
    var now = Date()

    /// From the windows; nil for a job stored before windows.
    var progress: JobProgress? { Self.progress(of: job, now: now) }

    static func progress(of job: JobSnapshot, now: Date) -> JobProgress? {
        job.windows.isEmpty ? nil : JobProgress(iters: job.parameters.iters, status: job.status, startedAt: job.startedAt,
                                                windows: job.windows, now: now)
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

    /// The per-frame files a ready frame has, by folder: disparity (and depth, for calibrated jobs) as soon as
    /// its window is stored; color and video once the job has succeeded (they need the video's one scale).
    /// Only the kinds the job's `outputs` asks for; `points` (PLY, calibrated jobs) joins with color and video.
    static func frameKinds(_ job: JobSnapshot) -> [String] {
        let asked = job.parameters.resultKinds
        var kinds: [ResultKind] = [.disparity, .depth].filter(asked.contains)
        if job.status == .succeeded { kinds += [.color, .video, .points].filter(asked.contains) }
        return kinds.map(\.rawValue).sorted()
    }

    /// The file extension of a per-frame kind's files.
    static func frameExtension(_ kind: String) -> String { kind == ResultKind.points.rawValue ? "ply" : "png" }

    /// Keys in sorted order, as `JSON.encode` writes them.
    func write(to json: inout JSONWriter) {
        let progress = self.progress
        json.beginObject()
        json.key("attempt"); json.int(job.attempt)
        json.key("created_at"); json.timestamp(job.createdAt)
        json.key("error")
        if let error = job.error {
            json.beginObject()
            json.key("code"); json.string(error.code)
            json.key("message"); json.string(error.message)
            json.endObject()
        } else {
            json.null()
        }
        json.key("finished_at"); json.timestamp(job.finishedAt)
        // Which frames' per-frame files can be downloaded now, while the job runs too: half-open ranges of
        // input frame indices, and the URL of each file with {name} the input frame's name without `.png`.
        // `names` gives frame i's name where it is not the default (its source index, 4 digits), and is null
        // in a list, which leaves them out; absent, the names are the default ones.
        json.key("frames_ready")
        json.beginObject()
        switch job.frameNames {
        case .sourceIndices:
            break
        case let .own(names):
            json.key("names")
            json.beginArray()
            for name in names { json.string(name) }
            json.endArray()
        case .ownUnread:
            json.key("names"); json.null()
        }
        json.key("ranges")
        json.beginArray()
        for range in job.resultsExpiredAt == nil ? (progress?.framesReady ?? []) : [] {
            json.beginArray(); json.int(range.lowerBound); json.int(range.upperBound); json.endArray()
        }
        json.endArray()
        json.key("url_templates")
        json.beginObject()
        for kind in Self.frameKinds(job) { json.key(kind); json.string("\(base)/\(kind)/{name}.\(Self.frameExtension(kind))") }
        json.endObject()
        json.endObject()
        json.key("id"); json.string(job.id.lowercased)
        json.key("parameters")
        json.beginObject()
        let parameters = job.parameters
        json.key("baseline_m"); json.double(parameters.baselineM)
        json.key("cx_px"); json.double(parameters.cxPx)
        json.key("cy_px"); json.double(parameters.cyPx)
        json.key("focal_px"); json.double(parameters.focalPx)
        json.key("fps"); json.double(parameters.fps)
        json.key("frame_count"); json.int(parameters.selection.count)
        json.key("frame_step"); json.int(parameters.selection.step)
        // `frames` (tars), `videos` (left and right files) or `stereo` (one packed file, with its layout).
        json.key("input"); json.string(job.source == .frames ? "frames" : job.source == .videos ? "videos" : "stereo")
        json.key("iters"); json.int(parameters.iters)
        json.key("kernel_size"); json.int(parameters.kernelSize)
        json.key("layout"); json.string(job.source == .sbs || job.source == .tb ? job.source.rawValue : nil)
        json.key("max_depth_m"); json.double(parameters.maxDepthM)
        json.key("max_size"); json.int(parameters.maxSize)
        // The kinds in force (the defaults spelled out when `outputs` was not given), in the documented order.
        json.key("outputs")
        json.beginArray()
        for kind in ResultKind.allCases where parameters.resultKinds.contains(kind) { json.string(kind.rawValue) }
        json.endArray()
        json.key("start_frame"); json.int(parameters.selection.start)
        json.endObject()
        json.key("progress")
        json.beginObject()
        json.key("eta_seconds"); json.double(progress?.etaSeconds.map { $0.rounded() })
        json.key("frames_done"); json.int(job.framesDone)
        json.key("frames_total"); json.int(job.framesTotal)
        json.key("iterations_done"); json.int(progress?.iterationsDone)
        json.key("iterations_total"); json.int(progress?.iterationsTotal)
        json.key("windows_done"); json.int(progress?.windowsDone)
        json.key("windows_total"); json.int(progress?.windowsTotal)
        json.endObject()
        json.key("results"); json.string(Self.resultsState(job))
        json.key("results_expired_at"); json.timestamp(job.resultsExpiredAt)
        json.key("started_at"); json.timestamp(job.startedAt)
        json.key("status"); json.string(job.status.rawValue)
        json.key("urls")
        json.beginObject()
        json.key("cancel"); json.string(urls.cancel)
        json.key("result_tar"); json.string(urls.resultTar)
        json.key("results")
        if let results = urls.results {
            json.beginArray()
            for url in results { json.string(url) }
            json.endArray()
        } else {
            json.null()
        }
        json.key("self"); json.string(urls.job)
        json.endObject()
        json.key("windows")
        if listsWindows {
            json.beginArray()
            for window in job.windows where window.kind == .window {
                json.beginObject()
                json.key("attempt"); json.int(window.attempt)
                json.key("first_frame"); json.int(window.inputFrames.lowerBound)
                json.key("frames"); json.int(window.inputFrames.count)
                json.key("index"); json.int(window.index)
                json.key("status"); json.string(window.status.rawValue)
                json.key("worker"); json.string(showsWorkers ? window.workerId : nil)
                json.endObject()
            }
            json.endArray()
        } else {
            json.null()
        }
        json.endObject()
    }

    /// The JSON body, with a final newline as `JSON.encode` ends it.
    var bytes: [UInt8] {
        var names = 0
        if case let .own(list) = job.frameNames { names = list.reduce(0) { $0 + $1.utf8.count + 3 } }
        var json = JSONWriter(capacity: 1024 + 128 * job.windows.count + names)
        write(to: &json)
        return json.bytes + [10]
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        JSONWriter.timestampText(date)
    }
}

/// `GET /jobs`: a page of jobs, newest first, and the cursor of the next page (null on the last).
struct JobListView {
    let jobs: [JobView]
    let nextCursor: String?

    var bytes: [UInt8] {
        var json = JSONWriter(capacity: 1024 * max(1, jobs.count))
        json.beginObject()
        json.key("jobs")
        json.beginArray()
        for job in jobs { job.write(to: &json) }
        json.endArray()
        json.key("next_cursor"); json.string(nextCursor)
        json.endObject()
        return json.bytes + [10]
    }
}
