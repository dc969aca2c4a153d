// Per-API-key limits: jobs queued at once and bytes uploaded per UTC day. A key's own values (set by
// `dynstereo keys create`) win; a key without one gets the server's default. An open server (no keys at
// all) has no per-key limits.
import Foundation

/// Limits for one API key; nil means unlimited.
public struct KeyLimits: Equatable, Sendable {
    /// Jobs the key may have queued or running at once.
    public var maxQueuedJobs: Int?
    /// Request body bytes the key may upload per UTC day.
    public var maxUploadBytesPerDay: Int?

    public init(maxQueuedJobs: Int? = nil, maxUploadBytesPerDay: Int? = nil) {
        self.maxQueuedJobs = maxQueuedJobs
        self.maxUploadBytesPerDay = maxUploadBytesPerDay
    }

    /// No limits: what a store gets unless its server configures defaults.
    public static let unlimited = KeyLimits()

    /// The key's own values where it has them, these defaults elsewhere.
    func overridden(maxQueuedJobs own: Int?, maxUploadBytesPerDay ownBytes: Int?) -> KeyLimits {
        KeyLimits(maxQueuedJobs: own ?? maxQueuedJobs, maxUploadBytesPerDay: ownBytes ?? maxUploadBytesPerDay)
    }
}

/// Where an API key stands against its limits, read without locking (a snapshot that may be stale by the
/// time a job is queued: the enqueue transaction decides for good).
public struct KeyUsage: Equatable, Sendable {
    /// The limits in force for the key (its own, else the server's defaults).
    public var limits: KeyLimits
    /// Its jobs queued or running.
    public var unfinishedJobs: Int
    /// Request body bytes it uploaded in jobs created this UTC day.
    public var uploadedBytesToday: Int

    public init(limits: KeyLimits, unfinishedJobs: Int, uploadedBytesToday: Int) {
        self.limits = limits
        self.unfinishedJobs = unfinishedJobs
        self.uploadedBytesToday = uploadedBytesToday
    }

    /// Bytes the key may still upload today; nil when unlimited.
    public var remainingUploadBytes: Int? {
        limits.maxUploadBytesPerDay.map { max(0, $0 - uploadedBytesToday) }
    }

    /// Whether a new job would pass the queued-jobs limit.
    public var atQueuedJobsLimit: Bool {
        limits.maxQueuedJobs.map { unfinishedJobs >= $0 } ?? false
    }
}
