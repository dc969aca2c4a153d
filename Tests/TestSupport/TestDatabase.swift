// A real PostgreSQL for the queue and worker tests: a schema per test, and private clusters to restart.
import Foundation

/// Errors of the test database helpers; the message says what to run.
public struct TestDatabaseError: Error, CustomStringConvertible {
    public let description: String
}

/// Each test gets its own schema in the server at `TEST_DATABASE_URL`, selected through the connection
/// string (`options=-csearch_path=...`), so tests can run in parallel and all SQL stays unqualified.
/// Works through `psql` so this target needs no dependency on the queue module.
public enum TestDatabase {
    /// `TEST_DATABASE_URL`, default `postgresql://postgres@127.0.0.1:55432/postgres` (what `.ci/postgres` starts).
    public static var serverURL: String {
        ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] ?? "postgresql://postgres@127.0.0.1:55432/postgres"
    }

    /// Creates a fresh schema named `<prefix>_<random>` and returns a connection string that uses it.
    /// Throws a clear error when the server does not answer (tests fail; they never skip).
    public static func makeSchema(_ prefix: String, server: String = serverURL) throws -> (url: String, schema: String) {
        let clean = prefix.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "_" }
        let schema = "t_\(clean.prefix(40))_\(UInt32.random(in: 0...UInt32.max))"
        // The name is built from [a-z0-9_] above, so it needs no quoting.
        try psql(server, "CREATE SCHEMA \(schema)")
        return (url(server, schema: schema), schema)
    }

    public static func dropSchema(_ schema: String, server: String = serverURL) {
        _ = try? psql(server, "DROP SCHEMA IF EXISTS \(schema) CASCADE")
    }

    /// `server` with `search_path` set to `schema`, for URIs and key=value strings alike.
    public static func url(_ server: String, schema: String) -> String {
        if server.hasPrefix("postgresql://") || server.hasPrefix("postgres://") {
            return server + (server.contains("?") ? "&" : "?") + "options=-csearch_path%3D\(schema)"
        }
        return server + " options='-csearch_path=\(schema)'"
    }

    /// Runs SQL with psql and returns its unaligned, tuples-only output.
    @discardableResult
    public static func psql(_ url: String, _ sql: String) throws -> String {
        let result = try run("/usr/bin/env", ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        guard result.status == 0 else {
            if result.output.contains("Connection refused") || result.output.contains("could not connect") {
                throw TestDatabaseError(description: """
                    PostgreSQL at \(url) does not answer. Start the test cluster with `eval "$(.ci/postgres)"` \
                    or point TEST_DATABASE_URL at a server. psql said: \(result.output)
                    """)
            }
            throw TestDatabaseError(description: "psql failed on \(sql): \(result.output)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs a program to completion, returning its exit status and combined output.
    ///
    /// posix_spawn and waitpid rather than Foundation's Process: a PostgreSQL server started by the
    /// program (pg_ctl start) inherits descriptors Process uses to notice the exit, and the wait would
    /// never return. Output goes to a temporary file for the same reason.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("dynstereo-run-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let environment = ProcessInfo.processInfo.environment.merging(environment ?? [:]) { $1 }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw TestDatabaseError(description: "cannot run \(executable): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? Data(contentsOf: log)) ?? Data()
        // WIFEXITED / WEXITSTATUS by hand: the low 7 bits are the terminating signal, 0 for a normal exit.
        let exitStatus: Int32 = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exitStatus, String(decoding: output, as: UTF8.self))
    }
}

/// A PostgreSQL cluster of the test's own, on its own port in a temporary folder, started through
/// `.ci/postgres` so it can be restarted under a running worker without disturbing other tests.
public final class PrivateCluster {
    public let port: Int
    public let directory: String
    public var serverURL: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    /// Starts a cluster on a port the kernel reports free, in a folder no other test run shares.
    public init() throws {
        port = try Self.freePort()
        directory = "/tmp/dynstereo-test-pg-\(getpid())-\(port)"
        try control("start")
    }

    /// Binds a TCP socket to port 0 and returns the port the kernel chose. The socket closes before PostgreSQL
    /// binds it, a window in which another process could take it, far rarer than two random picks colliding.
    private static func freePort() throws -> Int {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw TestDatabaseError(description: "socket() failed: errno \(errno)") }
        defer { close(socketFD) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(socketFD, generic, length) == 0 && getsockname(socketFD, generic, &length) == 0
            }
        }
        guard bound else { throw TestDatabaseError(description: "cannot find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public func restart() throws { try control("restart") }
    public func stop() throws { try control("stop") }

    /// Stops the server and deletes its folder.
    public func destroy() {
        try? control("stop")
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: directory + ".initdb.log")
    }

    private func control(_ command: String) throws {
        let script = SharedData.projectRoot.appendingPathComponent(".ci/postgres").path
        let result = try TestDatabase.run("/bin/bash", [script, command],
                                          environment: ["PGTEST_PORT": "\(port)", "PGTEST_DIR": directory])
        guard result.status == 0 else {
            throw TestDatabaseError(description: ".ci/postgres \(command) on port \(port) failed: \(result.output)")
        }
    }
}

/// A child process the test can signal (SIGTERM, SIGKILL) and wait for. Its output (stdout and stderr)
/// comes through a pipe, read on a thread of its own into the log file and into memory, so a test can block
/// until a line appears (`waitForOutput`); its exit is noticed by a thread blocked in `waitid`. Nothing
/// polls: each wait returns at the event, and its timeout only turns a hang into a failure.
public final class ChildProcess {
    public let pid: pid_t
    public let logPath: String
    private let exit: ChildExit
    private let output: ChildOutput

    public init(_ executable: String, _ arguments: [String], logPath: String) throws {
        self.logPath = logPath
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw TestDatabaseError(description: "pipe() failed: errno \(errno)") }
        // Close-on-exec, so that no child (this one after its dup2, or any spawned later) holds the pipe
        // open, which would keep the end of the output from ever being seen.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        close(ends[1])
        guard spawned == 0 else {
            close(ends[0])
            throw TestDatabaseError(description: "cannot run \(executable): error \(spawned)")
        }
        self.pid = pid
        output = ChildOutput(descriptor: ends[0], logPath: logPath)
        exit = ChildExit(pid: pid)
    }

    /// Sends `number` unless the child has been reaped (its pid could then name another process).
    public func signal(_ number: Int32) {
        exit.ifRunning { kill(pid, number) }
    }

    /// Blocks until the child exits and returns its status (128 + signal when killed); nil if it still runs
    /// after `timeout` seconds, a hang guard rather than a measure.
    public func wait(timeout: Double) -> Int32? {
        exit.wait(until: Date(timeIntervalSinceNow: timeout))
    }

    /// Blocks until the output matches `pattern` (a regular expression) and returns the first match's
    /// capture groups (an unmatched group as ""); nil when the output ends without a match, or at the hang
    /// guard `timeout`.
    public func waitForOutput(matching pattern: String, timeout: Double) -> [String]? {
        output.wait(for: pattern, until: Date(timeIntervalSinceNow: timeout))
    }

    /// The output so far; all of it once the child has exited (the reader has seen the pipe's end).
    public var log: String {
        if exit.wait(until: Date()) != nil { output.waitForEnd(until: Date(timeIntervalSinceNow: 10)) }
        return output.text
    }

    /// Kills the process if it still runs (test cleanup); the exit thread reaps it.
    deinit {
        signal(SIGKILL)
    }
}

/// A child's exit, seen by a thread blocked in `waitid`. The thread waits without reaping (`WNOWAIT`), then
/// reaps under the lock, so `ifRunning` never signals a pid the kernel may already have given away.
private final class ChildExit: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var status: Int32?

    init(pid: pid_t) {
        Thread.detachNewThread { [self] in
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
            condition.withLock {
                var raw: Int32 = 0
                while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
                // WIFEXITED / WEXITSTATUS by hand: the low 7 bits are the terminating signal, 0 for a normal exit.
                status = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
                condition.broadcast()
            }
        }
    }

    func ifRunning(_ body: () -> Void) {
        condition.withLock { if status == nil { body() } }
    }

    func wait(until deadline: Date) -> Int32? {
        condition.withLock {
            while status == nil {
                if !condition.wait(until: deadline) { break }
            }
            return status
        }
    }
}

/// A child's output as it is written, read on a thread of its own into memory and the log file.
private final class ChildOutput: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var data = Data()
    private var ended = false

    init(descriptor: Int32, logPath: String) {
        // Appended to, as a log: a test may start a second child on the same file.
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let file = FileHandle(forWritingAtPath: logPath)
        file?.seekToEndOfFile()
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(descriptor, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                let chunk = count > 0 ? Data(buffer[0..<count]) : Data()
                try? file?.write(contentsOf: chunk)
                condition.withLock {
                    if count > 0 { data += chunk } else { ended = true }
                    condition.broadcast()
                }
                if count <= 0 { break }
            }
            close(descriptor)
            try? file?.close()
        }
    }

    var text: String { condition.withLock { String(decoding: data, as: UTF8.self) } }

    func wait(for pattern: String, until deadline: Date) -> [String]? {
        let expression = try! NSRegularExpression(pattern: pattern)
        return condition.withLock {
            while true {
                let text = String(decoding: data, as: UTF8.self)
                if let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                    return (0..<match.numberOfRanges).map { index in
                        Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
                    }
                }
                if ended || !condition.wait(until: deadline) { return nil }
            }
        }
    }

    func waitForEnd(until deadline: Date) {
        condition.withLock {
            while !ended && condition.wait(until: deadline) {}
        }
    }
}
