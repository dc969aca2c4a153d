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

enum MetricsText {
    /// Upper bounds of the job duration histogram, in seconds.
    static let durationBuckets: [Double] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600]

    static func render(statusCounts: [JobStatus: Int], recent: [JobSnapshot], requests: [String: [Int: Int]]) -> String {
        var lines: [String] = []
        lines.append("# HELP dynstereo_jobs Jobs currently stored, by status.")
        lines.append("# TYPE dynstereo_jobs gauge")
        for status in JobStatus.allCases {
            lines.append("dynstereo_jobs{status=\"\(status.rawValue)\"} \(statusCounts[status] ?? 0)")
        }
        lines.append("# HELP dynstereo_jobs_finished_total Stored jobs that reached a terminal state.")
        lines.append("# TYPE dynstereo_jobs_finished_total counter")
        let finished = JobStatus.allCases.filter(\.isTerminal).reduce(0) { $0 + (statusCounts[$1] ?? 0) }
        lines.append("dynstereo_jobs_finished_total \(finished)")
        lines.append("# HELP dynstereo_jobs_failed_total Stored jobs that failed.")
        lines.append("# TYPE dynstereo_jobs_failed_total counter")
        lines.append("dynstereo_jobs_failed_total \(statusCounts[.failed] ?? 0)")

        // Durations come from the most recent successful jobs: storage keeps the timestamps, this process does not.
        let timed = recent.compactMap { job -> (seconds: Double, frames: Int)? in
            guard let started = job.startedAt, let finished = job.finishedAt else { return nil }
            return (max(0, finished.timeIntervalSince(started)), job.framesTotal)
        }
        lines.append("# HELP dynstereo_job_duration_seconds Run time of recent successful jobs (last attempt).")
        lines.append("# TYPE dynstereo_job_duration_seconds histogram")
        for bound in durationBuckets {
            let count = timed.filter { $0.seconds <= bound }.count
            lines.append("dynstereo_job_duration_seconds_bucket{le=\"\(format(bound))\"} \(count)")
        }
        lines.append("dynstereo_job_duration_seconds_bucket{le=\"+Inf\"} \(timed.count)")
        let totalSeconds = timed.reduce(0) { $0 + $1.seconds }
        let totalFrames = timed.reduce(0) { $0 + $1.frames }
        lines.append("dynstereo_job_duration_seconds_sum \(format(totalSeconds))")
        lines.append("dynstereo_job_duration_seconds_count \(timed.count)")
        lines.append("# HELP dynstereo_frames_per_second Frames processed per second of run time over recent successful jobs.")
        lines.append("# TYPE dynstereo_frames_per_second gauge")
        lines.append("dynstereo_frames_per_second \(format(totalSeconds > 0 ? Double(totalFrames) / totalSeconds : 0))")

        lines.append("# HELP dynstereo_http_requests_total HTTP responses sent, by route and status code.")
        lines.append("# TYPE dynstereo_http_requests_total counter")
        for route in requests.keys.sorted() {
            for (code, count) in requests[route]!.sorted(by: { $0.key < $1.key }) {
                lines.append("dynstereo_http_requests_total{route=\"\(route)\",code=\"\(code)\"} \(count)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
