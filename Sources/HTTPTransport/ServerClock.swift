// The time the server's timeouts are decided on (idle, head, body stall, shutdown grace), behind a protocol so
// that tests move it by hand instead of waiting for seconds to pass.
#if canImport(Glibc)
import Glibc
#endif

/// Where the connection loop reads the time and how long it may sleep in poll() before its next timeout.
/// Handler threads' socket writes keep their own wall-clock stall limit (`writeTimeout` inside poll()).
public protocol ServerClock: AnyObject, Sendable {
    /// Seconds on a monotonic scale with any origin.
    func now() -> Double
    /// The loop has acted on every timeout due at `now` and is about to wait for I/O; `deadline` is the
    /// earliest timeout still pending (nil: none). Returns poll()'s timeout in milliseconds, -1 for none.
    func pollTimeout(now: Double, deadline: Double?) -> Int32
    /// Called when the loop starts, with a function that makes it read the clock again at once.
    func attach(wake: @escaping @Sendable () -> Void)
    /// The loop has stopped and reads this clock no more.
    func detach()
}

/// The system's monotonic clock (CLOCK_MONOTONIC): what `serve` runs on.
public final class MonotonicClock: ServerClock {
    public init() {}

    public func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// At most a second, so that a deadline the loop did not foresee is never late by more than that; one
    /// millisecond more than the wait so the timeout is past, not just reached, when poll() returns.
    public func pollTimeout(now: Double, deadline: Double?) -> Int32 {
        let seconds = min(1.0, max(0, (deadline ?? now + 1) - now))
        return Int32(seconds * 1000) + 1
    }

    public func attach(wake: @escaping @Sendable () -> Void) {}
    public func detach() {}
}
