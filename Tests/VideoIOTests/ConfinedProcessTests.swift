import Foundation
import TestSupport
import XCTest
@testable import VideoIO

/// The confinement itself, checked from inside the child: its rlimits, descriptors and environment.
final class ConfinedProcessTests: XCTestCase {
    private let roomy = ProcessLimits(wallSeconds: 60, memoryBytes: 1 << 30)

    func testTheChildRunsUnderTheGivenRlimits() throws {
        var limits = roomy
        limits.openFiles = 40
        limits.fileBytes = 4096
        // dash's ulimit: -v address space (KiB), -n open files, -f file size (512-byte blocks), -c core, -t CPU seconds.
        let run = try ConfinedProcess.run(tool: "sh", arguments: ["-c", "ulimit -v; ulimit -n; ulimit -f; ulimit -c; ulimit -t"], limits: limits)
        XCTAssertEqual(run.end, .exited(0), run.stderr)
        let lines = String(decoding: run.output, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines, [String((1 << 30) / 1024), "40", "8", "0", String(limits.cpuSeconds)])
    }

    func testNoDescriptorOfTheParentReachesTheChild() throws {
        // A descriptor opened without O_CLOEXEC, as a careless library (or a database client) might leave one.
        let fd = open("/etc/hostname", O_RDONLY)
        XCTAssertGreaterThan(fd, 2)
        defer { close(fd) }
        let run = try ConfinedProcess.run(tool: "sh", arguments: ["-c", "ls /proc/$$/fd"], limits: roomy)
        XCTAssertEqual(run.end, .exited(0), run.stderr)
        let open = String(decoding: run.output, as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        // 0, 1, 2, plus the one the listing itself holds on /proc/PID/fd.
        XCTAssertFalse(open.contains(Int(fd)), "fd \(fd) was inherited: \(open)")
        XCTAssertTrue(open.allSatisfy { $0 <= 3 }, "\(open)")
    }

    func testTheEnvironmentIsBare() throws {
        setenv("DYNSTEREO_TEST_SECRET", "postgresql://user:secret@host/db", 1)
        defer { unsetenv("DYNSTEREO_TEST_SECRET") }
        let run = try ConfinedProcess.run(tool: "env", arguments: [], limits: roomy)
        let variables = Set(String(decoding: run.output, as: UTF8.self).split(separator: "\n").map(String.init))
        XCTAssertEqual(variables, ["PATH=/usr/bin:/bin", "LC_ALL=C"])
    }

    func testTheWallClockLimitKillsAChildThatHangs() throws {
        let run = try ConfinedProcess.run(tool: "sleep", arguments: ["600"], limits: ProcessLimits(wallSeconds: 0.5, memoryBytes: 1 << 30))
        XCTAssertEqual(run.end, .timedOut(seconds: 0.5))
        XCTAssertTrue(VideoFixtures.processes(mentioning: "sleep 600").isEmpty)
    }

    func testTheMemoryLimitStopsFFmpegFromStarting() throws {
        // ffmpeg maps its libraries before anything else; 64 MiB of address space is not enough for them.
        let starved = try ConfinedProcess.run(tool: "ffmpeg", arguments: ["-version"],
                                              limits: ProcessLimits(wallSeconds: 60, memoryBytes: 64 << 20))
        XCTAssertFalse(starved.end.succeeded)
        let fed = try ConfinedProcess.run(tool: "ffmpeg", arguments: ["-version"], limits: roomy)
        XCTAssertEqual(fed.end, .exited(0), fed.stderr)
        XCTAssertTrue(String(decoding: fed.output, as: UTF8.self).hasPrefix("ffmpeg version"))
    }

    func testAMissingToolIsAClearError() {
        XCTAssertThrowsError(try ConfinedProcess(tool: "no-such-tool-dynstereo", arguments: [], limits: roomy)) { error in
            XCTAssertEqual(error as? ConfinedProcessError, .toolMissing("no-such-tool-dynstereo"))
        }
    }
}
