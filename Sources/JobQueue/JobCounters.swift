// The queue's figures that only rise, kept by the transitions themselves (migration 0005), for /metrics.
import Foundation

/// What the job transitions have counted since the counters began (migration 0005, which started them from
/// the jobs stored then). Every figure only rises: deleting a job or expiring its data leaves them as they
/// are, so Prometheus can take rates of them.
public struct JobCounters: Equatable, Sendable {
    /// One bucket of the run-time histogram, cumulative as Prometheus wants it: the successful jobs that
    /// ran at most `upperBound` seconds (the last bucket's bound is infinity and counts every one).
    public struct Bucket: Equatable, Sendable {
        public var upperBound: Double
        public var cumulativeCount: Int

        public init(upperBound: Double, cumulativeCount: Int) {
            self.upperBound = upperBound
            self.cumulativeCount = cumulativeCount
        }
    }

    /// Jobs that reached each terminal state (every terminal state present, zero if none).
    public var finished: [JobStatus: Int]
    /// The run time of successful jobs' last attempt, smallest bound first.
    public var durationBuckets: [Bucket]
    /// Their run times added up, in seconds.
    public var durationSum: Double
    /// Their frames added up.
    public var framesSucceeded: Int

    /// Successful jobs timed: the infinite bucket's count.
    public var durationCount: Int { durationBuckets.last?.cumulativeCount ?? 0 }

    public init(finished: [JobStatus: Int], durationBuckets: [Bucket], durationSum: Double, framesSucceeded: Int) {
        self.finished = finished
        self.durationBuckets = durationBuckets
        self.durationSum = durationSum
        self.framesSucceeded = framesSucceeded
    }
}
