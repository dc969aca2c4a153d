// Prometheus text exposition: request counters kept here, job figures read from storage at scrape time.
import Foundation
import JobQueue

/// Counts HTTP responses by route and status code. Thread-safe.
final class RequestCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: [Int: Int]] = [:]

    func record(route: String, code: Int) {
        lock.lock()
        counts[route, default: [:]][code, default: 0] += 1
        lock.unlock()
    }

    func snapshot() -> [String: [Int: Int]] {
        lock.lock()
        defer { lock.unlock() }
        return counts
    }
}

/// The Prometheus text format (version 0.0.4) of /metrics. The job figures come from storage, so every API
/// process shows the same ones: the gauge from the stored rows, the counters and the histogram from what
/// the transitions counted (`JobCounters`), which only rises, whatever is deleted.
enum MetricsText {
    static func render(statusCounts: [JobStatus: Int], counters: JobCounters, requests: [String: [Int: Int]],
                       pollCache: NotifiedCacheStatistics? = nil) -> String {
        var lines: [String] = []
        lines.append("# HELP dynstereo_jobs Jobs currently stored, by status.")
        lines.append("# TYPE dynstereo_jobs gauge")
        for status in JobStatus.allCases {
            lines.append("dynstereo_jobs{status=\"\(status.rawValue)\"} \(statusCounts[status] ?? 0)")
        }
        lines.append("# HELP dynstereo_jobs_finished_total Jobs that reached a terminal state (succeeded, failed or cancelled).")
        lines.append("# TYPE dynstereo_jobs_finished_total counter")
        lines.append("dynstereo_jobs_finished_total \(JobStatus.terminal.reduce(0) { $0 + (counters.finished[$1] ?? 0) })")
        lines.append("# HELP dynstereo_jobs_failed_total Jobs that failed.")
        lines.append("# TYPE dynstereo_jobs_failed_total counter")
        lines.append("dynstereo_jobs_failed_total \(counters.finished[.failed] ?? 0)")

        lines.append("# HELP dynstereo_job_duration_seconds Run time of successful jobs (their last attempt).")
        lines.append("# TYPE dynstereo_job_duration_seconds histogram")
        for bucket in counters.durationBuckets {
            lines.append("dynstereo_job_duration_seconds_bucket{le=\"\(bound(bucket.upperBound))\"} \(bucket.cumulativeCount)")
        }
        lines.append("dynstereo_job_duration_seconds_sum \(format(counters.durationSum))")
        lines.append("dynstereo_job_duration_seconds_count \(counters.durationCount)")
        lines.append("# HELP dynstereo_frames_per_second Frames processed per second of run time, over every successful job.")
        lines.append("# TYPE dynstereo_frames_per_second gauge")
        let fps = counters.durationSum > 0 ? Double(counters.framesSucceeded) / counters.durationSum : 0
        lines.append("dynstereo_frames_per_second \(format(fps))")

        lines.append("# HELP dynstereo_http_requests_total HTTP responses sent, by route and status code.")
        lines.append("# TYPE dynstereo_http_requests_total counter")
        for route in requests.keys.sorted() {
            for (code, count) in requests[route]!.sorted(by: { $0.key < $1.key }) {
                lines.append("dynstereo_http_requests_total{route=\"\(labelValue(route))\",code=\"\(code)\"} \(count)")
            }
        }
        if let pollCache {
            // This process's own figures (each API server keeps its own answers).
            lines.append("# HELP dynstereo_poll_cache_hits_total Status polls answered from this server's memory.")
            lines.append("# TYPE dynstereo_poll_cache_hits_total counter")
            lines.append("dynstereo_poll_cache_hits_total \(pollCache.hits)")
            lines.append("# HELP dynstereo_poll_cache_misses_total Status polls that read the job store (while the change notifications were not heard too).")
            lines.append("# TYPE dynstereo_poll_cache_misses_total counter")
            lines.append("dynstereo_poll_cache_misses_total \(pollCache.misses + pollCache.bypassed)")
            lines.append("# HELP dynstereo_poll_cache_invalidations_total Changes that dropped kept answers: notifications and this server's own writes.")
            lines.append("# TYPE dynstereo_poll_cache_invalidations_total counter")
            lines.append("dynstereo_poll_cache_invalidations_total \(pollCache.invalidations)")
            lines.append("# HELP dynstereo_poll_cache_entries Jobs whose answer this server keeps now.")
            lines.append("# TYPE dynstereo_poll_cache_entries gauge")
            lines.append("dynstereo_poll_cache_entries \(pollCache.entries)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A bucket's `le`: Prometheus spells infinity `+Inf`.
    private static func bound(_ value: Double) -> String {
        value == .infinity ? "+Inf" : format(value)
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// A label value with the three characters the format escapes.
    private static func labelValue(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
