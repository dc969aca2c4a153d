// Waking a thread that waits on a PostgreSQL socket, from another thread, at once.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A pipe whose read end a LISTEN session polls beside its socket (`interrupt:` of the connection's waits):
/// `raise()` writes one byte, and the wait ends at once instead of at its timeout. The byte is never read, so
/// once raised the signal stays raised, as a stop does.
///
/// Both ends are close-on-exec (the subprocesses a worker starts inherit no descriptor of ours) and
/// non-blocking (a raise never blocks; a full pipe already wakes the waiter).
public final class StopSignal: @unchecked Sendable {
    /// Why no signal could be made: the process is out of file descriptors.
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The read end, to poll for input.
    public let descriptor: Int32
    private let writeEnd: Int32

    public init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw Unavailable(description: "no pipe (\(String(cString: strerror(errno))))") }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        (descriptor, writeEnd) = (ends[0], ends[1])
    }

    deinit {
        close(descriptor)
        close(writeEnd)
    }

    /// Wakes every present and later wait on `descriptor`. Thread-safe.
    public func raise() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }
}
