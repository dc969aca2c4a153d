// The job lifecycle: five states, the transitions between them, and who makes each one.

/// The state of a job.
///
/// ```
///                 claim (worker)                 succeed (worker)
///   queued ───────────────────────────► running ────────────────────► succeeded
///     ▲  │                               │ │ │  fail (worker, bad input or attempts used up;
///     │  │ cancel (API)                  │ │ │        lease reaper, attempts used up)
///     │  ▼                               │ │ └─────────────────────────► failed
///   cancelled ◄──────────────────────────┘ │
///        cancel honoured (worker; lease    │ retry (worker after an error, lease reaper after
///        reaper when the worker is gone)   │ a lost worker; both with backoff) and hand-back
///                                          └─► queued        (worker on SIGTERM, no attempt spent)
/// ```
///
/// Since migration 0006 the unit of work is a window (`JobWindow`): windows move through these same states by
/// these same transitions, each with its own lease, and a job's status follows from its windows'
/// (`Queries.deriveJobStatus`, run in the transaction of every window move):
///
/// | the job is  | when |
/// |-------------|------|
/// | `succeeded` | its finishing step succeeded (claimable once every window is stored) |
/// | `failed`    | a window failed (bad input, or its attempts used up); its other windows are cancelled |
/// | `cancelled` | cancellation was requested (`JobStore.cancel`) and none of its windows runs any more |
/// | `running`   | a window runs, or a window's results are stored |
/// | `queued`    | otherwise: created by `JobStore.enqueue`, or every running window handed back with none stored |
///
/// - Windows: `queued` when planned (at enqueue, or by a worker for a job queued before migration 0006);
///   `running` by a worker's claim, which takes a new lease; left only by the worker holding that lease
///   (every write is fenced by job, window and lease) or by the lease reaper once the lease expired.
/// - `succeeded`, `failed`, `cancelled`: terminal, for jobs and windows. Only `JobStore.delete` removes such a job.
public enum JobStatus: String, CaseIterable, Codable, Sendable {
    case queued, running, succeeded, failed, cancelled

    /// The state `JobStore.enqueue` creates a job in.
    public static let initial = JobStatus.queued

    /// True for the three states a job never leaves.
    public var isTerminal: Bool {
        switch self {
        case .queued, .running: return false
        case .succeeded, .failed, .cancelled: return true
        }
    }

    /// The states a job ends in, in declaration order (the order migration 0004's index names them).
    public static let terminal = allCases.filter(\.isTerminal)
    /// The states of a job not yet finished: what a key's queued-jobs limit counts.
    public static let unfinished = allCases.filter { !$0.isTerminal }

    /// Whether the lifecycle above has an arrow from `self` to `next`. Written from the diagram, apart from
    /// `JobTransition`, so that a test can hold the two tables against each other.
    public func canMove(to next: JobStatus) -> Bool {
        switch (self, next) {
        case (.queued, .running), (.queued, .cancelled),
             (.running, .succeeded), (.running, .failed), (.running, .cancelled), (.running, .queued):
            return true
        default:
            return false
        }
    }
}

/// A named arrow of the lifecycle. Each query that changes a job's status binds `from` and `to` from one of
/// these (never a status literal), so a status move is written in this table only. `JobStatusTests` checks
/// that every transition is an arrow of the diagram and every arrow has a transition.
public enum JobTransition: CaseIterable, Sendable {
    case claim, succeed, fail, retry, handBack, cancelQueued, cancelRunning

    public var from: JobStatus {
        switch self {
        case .claim, .cancelQueued: return .queued
        case .succeed, .fail, .retry, .handBack, .cancelRunning: return .running
        }
    }

    public var to: JobStatus {
        switch self {
        case .claim: return .running
        case .succeed: return .succeeded
        case .fail: return .failed
        case .retry, .handBack: return .queued
        case .cancelQueued, .cancelRunning: return .cancelled
        }
    }
}
