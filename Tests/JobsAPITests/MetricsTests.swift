// /metrics over a real socket with the PostgreSQL job store: Prometheus's own checker accepts the text, the
// counters never go down when jobs are deleted, and the run-time histogram is cumulative.
import Foundation
import HTTPTestSupport
import HTTPTransport
@testable import JobsAPI
import JobQueue
import TestSupport
import XCTest

final class MetricsTests: StoreServerTestCase {
    private let clock = ManualClock()
    private var store: JobStore!

    override var schemaPrefix: String { "metrics_" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        store = try JobStore(url: databaseURL, clock: clock)
    }

    private func metrics() throws -> String {
        let response = try send("GET", "/metrics")
        XCTAssertEqual(response.status, 200)
        return response.text
    }

    /// The value of the sample `series` (name with its labels, as printed), nil when absent.
    private func enqueue(frames: Int = 2) throws -> UUID {
        let frames = (0..<frames).map { InputFrame(index: $0, name: "\($0)", left: Data([1]), right: Data([2])) }
        return try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames, idempotencyKey: nil,
                                 payloadDigest: nil).job.id
    }

    /// Claims the oldest job; it runs `seconds` of the clock and ends as `outcome`.
    private func run(seconds: Double = 1, _ outcome: JobStatus) throws {
        let queue = WorkerQueue(url: databaseURL, clock: clock)
        let job = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 86_400))
        clock.advance(by: seconds)
        switch outcome {
        case .succeeded:
            let frames = job.window.resultFrames.map { frame in
                FrameResult(frameIndex: frame, name: "\(frame)", height: 1, width: 1, disparity: Data(count: 4),
                            disparityPNG: Data([1]), depthPNG: nil, minDisparity: 0, maxDisparity: 0)
            }
            XCTAssertTrue(try queue.succeed(job, frames: frames))
            XCTAssertTrue(try queue.finish(try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 86_400))))
        case .failed: XCTAssertTrue(try queue.fail(job, error: JobErrorInfo(code: "bad_input", message: "not a PNG")))
        case .cancelled:
            _ = try store.cancel(id: job.jobId)
            XCTAssertTrue(try queue.markCancelled(job))
        default: XCTFail("not an outcome: \(outcome)")
        }
    }

    func testPromtoolAcceptsTheServedMetrics() throws {
        for outcome in [JobStatus.succeeded, .failed, .cancelled, .succeeded] {
            _ = try enqueue()
            try run(seconds: 7, outcome)
        }
        _ = try enqueue()
        XCTAssertEqual(try send("GET", "/nowhere").status, 404)
        let text = try metrics()
        try assertPromtoolAccepts(text)
        XCTAssertEqual(metricValue("dynstereo_jobs_finished_total", in: text), 4)
        XCTAssertEqual(metricValue("dynstereo_jobs_failed_total", in: text), 1)
        XCTAssertEqual(metricValue("dynstereo_jobs{status=\"queued\"}", in: text), 1)
        XCTAssertEqual(metricValue("dynstereo_frames_per_second", in: text), 4.0 / 14)
    }

    func testCountersNeverGoDownWhenJobsAreDeleted() throws {
        var ids: [UUID] = []
        for outcome in [JobStatus.succeeded, .failed, .succeeded] {
            ids.append(try enqueue())
            try run(seconds: 3, outcome)
        }
        let before = try metrics()
        XCTAssertEqual(metricValue("dynstereo_jobs_finished_total", in: before), 3)
        XCTAssertEqual(metricValue("dynstereo_jobs_failed_total", in: before), 1)
        XCTAssertEqual(metricValue("dynstereo_job_duration_seconds_count", in: before), 2)
        XCTAssertEqual(metricValue("dynstereo_jobs{status=\"succeeded\"}", in: before), 2)
        for id in ids { XCTAssertEqual(try send("DELETE", "/jobs/\(id.uuidString.lowercased())").status, 204) }

        let after = try metrics()
        XCTAssertEqual(metricValue("dynstereo_jobs{status=\"succeeded\"}", in: after), 0, "the gauge follows the stored rows")
        for series in ["dynstereo_jobs_finished_total", "dynstereo_jobs_failed_total", "dynstereo_job_duration_seconds_count",
                       "dynstereo_job_duration_seconds_sum", "dynstereo_job_duration_seconds_bucket{le=\"5\"}",
                       "dynstereo_job_duration_seconds_bucket{le=\"+Inf\"}"] {
            let old = try XCTUnwrap(metricValue(series, in: before), series)
            XCTAssertEqual(metricValue(series, in: after), old, "\(series) stays after the DELETEs")
        }
        _ = try enqueue()
        try run(seconds: 3, .failed)
        let later = try metrics()
        XCTAssertEqual(metricValue("dynstereo_jobs_finished_total", in: later), 4, "and rises from there")
        XCTAssertEqual(metricValue("dynstereo_jobs_failed_total", in: later), 2)
    }

    func testTheDurationHistogramIsCumulative() throws {
        let runTimes: [Double] = [0.5, 3, 5, 100, 5_000]
        for seconds in runTimes {
            _ = try enqueue()
            try run(seconds: seconds, .succeeded)
        }
        let text = try metrics()
        let buckets = text.split(separator: "\n").filter { $0.hasPrefix("dynstereo_job_duration_seconds_bucket{le=\"") }
            .map { line -> (bound: Double, count: Double) in
                let le = line.split(separator: "\"")[1]
                return (le == "+Inf" ? .infinity : Double(le) ?? .nan, Double(line.split(separator: " ").last ?? "") ?? .nan)
            }
        XCTAssertEqual(buckets.map(\.bound), [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, .infinity], text)
        for bucket in buckets {
            XCTAssertEqual(bucket.count, Double(runTimes.filter { $0 <= bucket.bound }.count), "le=\(bucket.bound)")
        }
        XCTAssertEqual(buckets.map(\.count), buckets.map(\.count).sorted(), "each bucket holds every smaller one")
        XCTAssertEqual(metricValue("dynstereo_job_duration_seconds_count", in: text), Double(runTimes.count))
        XCTAssertEqual(buckets.last?.count, Double(runTimes.count), "+Inf counts them all")
        XCTAssertEqual(try XCTUnwrap(metricValue("dynstereo_job_duration_seconds_sum", in: text)), runTimes.reduce(0, +), accuracy: 1e-6)
    }
}
