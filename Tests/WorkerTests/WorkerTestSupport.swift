// How the worker tests wait: for a job's row to change (a trigger NOTIFYs), for a worker event, or for the
// fake network to reach a frame. Never for time to pass.
import Foundation
@testable import JobQueue
import QueueTestSupport
import TestSupport
import Worker
import XCTest

/// How long a wait may take before the test fails instead of hanging (see `JobWatch`, in QueueTestSupport).
let hangGuard = JobWatch.hangGuard

/// Every event a worker reported, in order, which a test can wait on.
final class EventLog: @unchecked Sendable {
    private let condition = NSCondition()
    private var events: [WorkerEvent] = []

    /// The observer to hand to `QueueWorker`.
    var observer: @Sendable (WorkerEvent) -> Void {
        { [self] event in
            condition.withLock {
                events.append(event)
                condition.broadcast()
            }
        }
    }

    /// Events so far: pass it as `after` to wait only for what comes next.
    var count: Int { condition.withLock { events.count } }
    var all: [WorkerEvent] { condition.withLock { events } }

    /// The index of the first event at or after `after` that satisfies `predicate`, waiting for it; nil
    /// (and a failure) at the hang guard.
    @discardableResult
    func wait(after: Int = 0, file: StaticString = #filePath, line: UInt = #line,
              for predicate: (WorkerEvent) -> Bool) -> Int? {
        let deadline = Date(timeIntervalSinceNow: hangGuard)
        return condition.withLock {
            var next = after
            while true {
                while next < events.count {
                    if predicate(events[next]) { return next }
                    next += 1
                }
                guard condition.wait(until: deadline) else {
                    XCTFail("the awaited worker event never came; seen \(events)", file: file, line: line)
                    return nil
                }
            }
        }
    }
}

/// Holds a processor before one frame until the test lets it go, and tells the test when it got there.
final class FrameGate: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var holdAt: Int?
    private var held = false

    init(holdAt: Int?) {
        self.holdAt = holdAt
    }

    /// Called by the processor before frame `index`. At the held frame it waits until `release()`, or
    /// throws `CancellationError` once `isCancelled` says so, which it checks between short waits as the
    /// network checks between its iterations.
    func pass(_ index: Int, isCancelled: () -> Bool) throws {
        try condition.withLock {
            guard index == holdAt else { return }
            held = true
            condition.broadcast()
            defer { held = false }
            while holdAt == index {
                if isCancelled() { throw CancellationError() }
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.01))
            }
        }
    }

    /// Waits until the processor stands at the held frame; false (and a failure) at the hang guard.
    @discardableResult
    func waitUntilHeld(file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let deadline = Date(timeIntervalSinceNow: hangGuard)
        return condition.withLock {
            while !held {
                guard condition.wait(until: deadline) else {
                    XCTFail("the processor never reached the held frame", file: file, line: line)
                    return false
                }
            }
            return true
        }
    }

    /// Holds at `index` from now on (for a processor that learns its frame when it starts).
    func hold(at index: Int) {
        condition.withLock { holdAt = index }
    }

    func release() {
        condition.withLock {
            holdAt = nil
            condition.broadcast()
        }
    }
}
