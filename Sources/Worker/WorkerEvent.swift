// What a running worker reports as it goes, for whoever watches it (tests wait on these instead of on time).
import Foundation
import JobQueue

/// A step of a running `QueueWorker`, reported to its `events` observer on the thread that took it.
/// The observer must return quickly and must not call back into the worker (some events are reported
/// with the worker's wake-up lock held, so that what they say is still true when the observer sees it).
public enum WorkerEvent: Equatable, Sendable {
    /// `JobWakeups` subscribed to enqueue notifications (again, after a reconnect) and woke the slots.
    case listening
    /// A slot found nothing to claim and now waits for a wake-up: a notification, a poll, the stop, or the
    /// end of the earliest backoff among queued windows.
    case slotIdle(slot: Int)
    /// A slot recorded what became of a window or a finishing step of a job (or gave up recording it, when its
    /// lease was lost). The job has succeeded when a finishing step ended this way and the job reads so.
    case windowEnded(slot: Int, job: UUID, window: Int, kind: JobWindow.Kind)
    /// One pass of a service ended; `changed` counts what it moved (windows whose lease it reaped, jobs whose
    /// data it expired).
    case servicePass(WorkerService, changed: Int)
    /// A slot or service could not reach the database and will try again after a backoff.
    case databaseUnreachable(String)
}

/// The worker's background duties, each on its own thread with its own interval (and its own session, for
/// those that need the database).
public enum WorkerService: String, CaseIterable, Sendable {
    /// Wakes idle slots: on every notification (LISTEN: an enqueue, a stored window, a retry, a re-queue by a
    /// lease reaper, a hand-back), and every `pollInterval` in case one was missed (a lost LISTEN session).
    /// A slot waiting for a backoff to end wakes at its end by itself.
    case wakeups
    /// Every `reapInterval`: running jobs whose worker stopped heartbeating go back to the queue (or fail,
    /// or end cancelled), exactly as the worker would have done (`WorkerQueue.expireLeases`).
    case leaseReaper = "lease-reaper"
    /// Every `retentionInterval`: finished jobs older than `resultRetention` lose their inputs and results
    /// in short batches (`WorkerQueue.expireResults`).
    case retention
}
