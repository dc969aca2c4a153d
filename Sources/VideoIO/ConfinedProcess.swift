// A child process at arm's length: resource limits, a wall-clock deadline, no inherited descriptors, a bare
// environment. ffmpeg and ffprobe parse untrusted files; a hostile one must cost one failed run, nothing more.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSpawnShim
import Foundation

/// The limits a confined child runs under.
public struct ProcessLimits: Equatable, Sendable {
    /// Wall-clock seconds from spawn; past them the child's process group is killed (SIGKILL).
    public var wallSeconds: Double
    /// RLIMIT_AS: the child's address space in bytes. ffmpeg maps about 350 MiB of shared libraries before it
    /// reads a byte, so below about 600 MiB it cannot start at all.
    public var memoryBytes: Int
    /// RLIMIT_CPU in seconds (a backstop beside the wall clock; every thread's time counts).
    public var cpuSeconds: Int
    /// RLIMIT_FSIZE: the largest file the child may write, in bytes (0 for a decoder, which writes only pipes).
    public var fileBytes: Int?
    /// RLIMIT_NOFILE.
    public var openFiles: Int = 64

    public init(wallSeconds: Double, memoryBytes: Int, cpuSeconds: Int? = nil, fileBytes: Int? = nil) {
        self.wallSeconds = wallSeconds
        self.memoryBytes = memoryBytes
        self.cpuSeconds = cpuSeconds ?? max(10, Int((wallSeconds * 4).rounded(.up)))
        self.fileBytes = fileBytes
    }
}

/// How a confined child ended.
public enum ProcessEnd: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)
    /// Killed by the wall-clock deadline.
    case timedOut(seconds: Double)

    public var succeeded: Bool { self == .exited(0) }
}

/// Errors spawning or talking to a child.
public enum ConfinedProcessError: Error, CustomStringConvertible, Equatable {
    case toolMissing(String)
    case spawnFailed(String, errno: Int32)

    public var description: String {
        switch self {
        case let .toolMissing(name):
            return "\(name) is not installed (on Debian: apt-get install \(name == "prlimit" ? "util-linux" : "ffmpeg"))"
        case let .spawnFailed(tool, code):
            return "cannot start \(tool): \(String(cString: strerror(code)))"
        }
    }
}

/// A running child: `prlimit` sets its rlimits and execs the tool, so the limits hold from the tool's first
/// instruction (posix_spawn has no rlimit attribute, and fork is unsafe in a threaded Swift process).
/// Standard input is a pipe when asked for (else /dev/null), standard output a pipe read with `read`, standard
/// error drained on a thread into a bounded tail for messages. Every other descriptor is closed in the child.
public final class ConfinedProcess {
    public let tool: String
    public let pid: pid_t
    private let limits: ProcessLimits
    private var stdinFD: Int32
    private var stdoutFD: Int32
    private let stderrDrain: Thread
    private let state = State()

    /// What the watchdog and `wait` share; the lock makes "kill only a child not yet reaped" one step.
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var exited = false
        var timedOut = false
        /// Seconds of the wall-clock limit not used yet, the moment it last started counting (nil while held),
        /// and a counter that retires the watchdog armed before the latest hold or resume.
        var budget: Double = 0
        var countingSince: DispatchTime?
        var generation = 0
        var stderrTail = Data()
        let stderrDone = DispatchSemaphore(value: 0)
    }

    /// Bytes of standard error kept (the end of it, where ffmpeg says what went wrong).
    static let stderrTailBytes = 8192

    /// Finds `name` in /usr/bin, /bin or PATH.
    public static func locate(_ name: String) throws -> String {
        var directories = ["/usr/bin", "/bin", "/usr/local/bin"]
        if let path = ProcessInfo.processInfo.environment["PATH"] {
            directories += path.split(separator: ":").map(String.init)
        }
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ConfinedProcessError.toolMissing(name)
    }

    /// Spawns `tool arguments...` (a name looked up with `locate`) under `limits`.
    public init(tool: String, arguments: [String], limits: ProcessLimits, standardInput: Bool = false) throws {
        self.tool = tool
        self.limits = limits
        // A write to a child that died must be an EPIPE error here, not a signal that ends this process.
        signal(SIGPIPE, SIG_IGN)
        let executable = try Self.locate(tool)
        let prlimit = try Self.locate("prlimit")
        var rlimits = ["--as=\(limits.memoryBytes)", "--cpu=\(limits.cpuSeconds)", "--core=0",
                       "--nofile=\(limits.openFiles)"]
        if let fileBytes = limits.fileBytes { rlimits.append("--fsize=\(fileBytes)") }
        let argv = [prlimit] + rlimits + ["--", executable] + arguments

        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], error: [Int32] = [-1, -1]
        func closeAll() { for fd in input + output + error where fd >= 0 { close(fd) } }
        guard cspawn_pipe_cloexec(&output) == 0, cspawn_pipe_cloexec(&error) == 0,
              !standardInput || cspawn_pipe_cloexec(&input) == 0 else {
            let code = errno
            closeAll()
            throw ConfinedProcessError.spawnFailed(tool, errno: code)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if standardInput {
            posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, error[1], 2)
        // Sockets, database connections and any file this process holds stay here, CLOEXEC or not.
        cspawn_add_close_from(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so the watchdog's kill reaches any helper it forks; default signal handling.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // A bare environment: no DATABASE_URL or keys for a decoder to see.
        let environment = ["PATH=/usr/bin:/bin", "LC_ALL=C"]
        var child: pid_t = 0
        let status = Self.withCStrings(argv) { argvPointers in
            Self.withCStrings(environment) { envPointers in
                posix_spawn(&child, prlimit, &actions, &attributes, argvPointers, envPointers)
            }
        }
        guard status == 0 else {
            closeAll()
            throw ConfinedProcessError.spawnFailed(tool, errno: status)
        }
        pid = child
        close(output[1])
        close(error[1])
        if standardInput { close(input[0]) }
        stdinFD = standardInput ? input[1] : -1
        stdoutFD = output[0]

        let errorFD = error[0]
        let state = self.state
        stderrDrain = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(errorFD, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                state.lock.lock()
                state.stderrTail.append(contentsOf: buffer[0..<n])
                if state.stderrTail.count > 2 * Self.stderrTailBytes {
                    state.stderrTail = state.stderrTail.suffix(Self.stderrTailBytes)
                }
                state.lock.unlock()
            }
            close(errorFD)
            state.stderrDone.signal()
        }
        stderrDrain.start()

        state.budget = limits.wallSeconds
        state.lock.lock()
        startCounting()
        state.lock.unlock()
    }

    /// Starts the wall clock and arms the watchdog for what is left of the limit. Called with the lock held.
    private func startCounting() {
        let (state, pid) = (self.state, self.pid)
        state.countingSince = .now()
        state.generation += 1
        let generation = state.generation
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, state.budget)) {
            state.lock.lock()
            defer { state.lock.unlock() }
            guard !state.exited, state.generation == generation else { return }
            state.timedOut = true
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
    }

    /// Stops the wall clock: time from here until `resumeClock` does not count against `limits.wallSeconds`.
    /// For a child this process keeps waiting on purpose (a decoder blocked writing frames the network is not
    /// ready for), so that the limit bounds the time spent waiting for the child, not for ourselves. The CPU
    /// limit still holds.
    public func holdClock() {
        state.lock.lock()
        defer { state.lock.unlock() }
        guard let since = state.countingSince else { return }
        state.budget -= Double(DispatchTime.now().uptimeNanoseconds - since.uptimeNanoseconds) / 1e9
        state.countingSince = nil
        state.generation += 1
    }

    /// Starts the wall clock again after `holdClock`, with what was left of the limit.
    public func resumeClock() {
        state.lock.lock()
        defer { state.lock.unlock() }
        guard state.countingSince == nil, !state.exited else { return }
        startCounting()
    }

    deinit {
        if stdinFD >= 0 { close(stdinFD) }
        if stdoutFD >= 0 { close(stdoutFD) }
        // A child never waited for is killed and reaped here, so none outlives its owner as a zombie or a hog.
        state.lock.lock()
        let running = !state.exited
        if running { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
        state.lock.unlock()
        if running { _ = reap() }
    }

    /// Reads up to `buffer.count` bytes of standard output, retrying short reads; returns how many arrived
    /// (fewer only at the end of the stream).
    public func readOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var filled = 0
        while filled < buffer.count {
            let n = read(stdoutFD, buffer.baseAddress! + filled, buffer.count - filled)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
        }
        return filled
    }

    /// Reads standard output to its end, keeping at most `limit` bytes.
    public func readAllOutput(limit: Int = 16 << 20) -> Data {
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { readOutput(into: $0) }
            if data.count < limit { data.append(contentsOf: chunk[0..<min(n, limit - data.count)]) }
            if n < chunk.count { break }
        }
        return data
    }

    /// Writes all of `bytes` to standard input; false when the child has stopped reading (it exited).
    @discardableResult
    public func writeInput(_ bytes: UnsafeRawBufferPointer) -> Bool {
        precondition(stdinFD >= 0, "\(tool) was spawned without a standard-input pipe")
        var sent = 0
        while sent < bytes.count {
            let n = write(stdinFD, bytes.baseAddress! + sent, bytes.count - sent)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Closes standard input (the child sees the end of its input).
    public func closeInput() {
        if stdinFD >= 0 { close(stdinFD); stdinFD = -1 }
    }

    /// Kills the child now (its whole process group).
    public func terminate() {
        state.lock.lock()
        if !state.exited { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
        state.lock.unlock()
    }

    /// Waits for the child to end and reaps it. Closes the pipes first so a child blocked writing output that
    /// nobody will read ends instead of hanging.
    public func wait() -> ProcessEnd {
        closeInput()
        if stdoutFD >= 0 { close(stdoutFD); stdoutFD = -1 }
        return reap()
    }

    private func reap() -> ProcessEnd {
        // Wait without reaping, mark the child exited under the lock, then reap: the watchdog can never kill a
        // recycled pid, because the pid stays ours until waitpid below.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        state.lock.lock()
        state.exited = true
        let timedOut = state.timedOut
        state.lock.unlock()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        state.stderrDone.wait()
        state.stderrDone.signal()
        if timedOut { return .timedOut(seconds: limits.wallSeconds) }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the C macros do not import).
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    /// The last lines the child wrote to standard error (complete after `wait`).
    public var standardError: String {
        state.lock.lock()
        defer { state.lock.unlock() }
        return String(decoding: state.stderrTail.suffix(Self.stderrTailBytes), as: UTF8.self)
    }

    /// The last non-empty line of standard error, the one ffmpeg uses for its verdict.
    public var lastErrorLine: String? {
        standardError.split(whereSeparator: \.isNewline).last.map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    /// Runs `tool` to completion and returns its output (capped) and how it ended.
    public static func run(tool: String, arguments: [String], limits: ProcessLimits) throws -> (output: Data, end: ProcessEnd, stderr: String) {
        let process = try ConfinedProcess(tool: tool, arguments: arguments, limits: limits)
        let output = process.readAllOutput()
        let end = process.wait()
        return (output, end, process.standardError)
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
