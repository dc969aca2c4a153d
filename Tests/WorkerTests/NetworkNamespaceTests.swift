// Workers on other machines, in miniature (issue 13): PostgreSQL in a network namespace of its own and two
// real `dynstereo work` processes in two more, each reaching the database only over its own veth pair, run
// the windows of one job. Needs root (namespaces, veths) and iproute2's `ip`; without them the test fails
// with a message saying so, it never skips.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import JobQueue
import Media
import QueueTestSupport
import TestSupport
import XCTest

final class NetworkNamespaceTests: XCTestCase {
    private var lab: NamespaceLab?
    private var children: [ChildProcess] = []
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("netns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        // The namespaces' processes (the workers, PostgreSQL) are killed before the namespaces go, so that
        // nothing keeps a namespace alive once its name is removed.
        lab?.destroy()
        lab = nil
        children.removeAll()
        try? FileManager.default.removeItem(at: scratch)
    }

    private let checkpoint = SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth").path

    /// Two "machines" (namespaces `east` and `west`), each linked to the database's namespace by a veth pair
    /// of its own and routing nothing else, run one job's windows.
    ///
    /// Which worker gets which window is made certain without waiting for time: before the workers start,
    /// the test inserts (and keeps uncommitted) a row for frame 0, so whichever worker claims window 0 (the
    /// claim takes windows in order) blocks at the primary key when it stores that window, holding no lock the
    /// other needs; the other worker then runs every remaining window. Once those are stored the test rolls
    /// its row back, the held window is stored, and the finishing step ends the job.
    func testTwoWorkersInNamespacesOfTheirOwnRunWindowsOfOneJobOverVethOnly() throws {
        let lab = try NamespaceLab()
        self.lab = lab
        let database = try lab.add("db")
        let machines = [(name: "east", subnet: 1), (name: "west", subnet: 2)]
        var serverAddress: [String: String] = [:]
        for machine in machines {
            let namespace = try lab.add(machine.name)
            // Private addresses, but only ever inside these namespaces: neither end is in the host's.
            try lab.link(database, "\(machine.name)", "10.213.\(machine.subnet).1/30", to: namespace, "db", "10.213.\(machine.subnet).2/30")
            serverAddress[machine.name] = "10.213.\(machine.subnet).1"
            // The machine's only route is its link to the database: no default route, no loopback.
            let routes = try lab.ip(["-n", namespace, "-4", "route", "show"]).split(separator: "\n")
            XCTAssertEqual(routes.count, 1, "\(routes)")
            XCTAssertTrue(routes.first?.hasPrefix("10.213.\(machine.subnet).0/30 dev db") ?? false, "\(routes)")
        }
        let cluster = try lab.startPostgres(in: database, listen: machines.map { "10.213.\($0.subnet).1" },
                                            clients: machines.map { "10.213.\($0.subnet).2" })

        // The test, like the API server, reaches PostgreSQL through its Unix socket (the file system is shared).
        let (url, schema) = try TestDatabase.makeSchema("netns", server: cluster.socketURL)
        try Migrator(url: url).run()
        let store = try JobStore(url: url)
        let watch = try JobWatch(url: url, schema: schema)
        let frameCount = 12
        let id = try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 4), frames: try goldenVideo(frames: frameCount),
                                   idempotencyKey: nil, payloadDigest: nil).job.id
        let windowCount = try store.windows(id: id).filter { $0.kind == .window }.count
        XCTAssertGreaterThanOrEqual(windowCount, 3)

        let holder = try PostgresConnection(url: url)
        try holder.execute(Queries.begin)
        try holder.execute(Query(name: "hold_frame_0", sql: """
            INSERT INTO job_frames (job_id, frame_index, name, height, width, disparity, disparity_png, min_disparity, max_disparity)
            VALUES ($1, 0, 'held by the test', 1, 1, '\\x00000000', '\\x00', 0, 0)
            """), [.uuid(id)])

        let binary = try BuiltProducts.dynstereo().path
        let server = try ChildProcess(binary, ["serve", "--database", url, "--listen", "127.0.0.1:0", "--upload-dir", scratch.path,
                                               "--skip-migrations"], logPath: scratch.appendingPathComponent("serve.log").path)
        children.append(server)
        for machine in machines {
            // Over the veth address only: the URL names no socket and no host the namespace could reach otherwise.
            let tcp = TestDatabase.url("postgresql://postgres@\(serverAddress[machine.name]!):\(cluster.port)/postgres", schema: schema)
            children.append(try ChildProcess(lab.ipPath, [
                "netns", "exec", lab.namespace(machine.name), binary, "work", "--database", tcp, "--checkpoint", checkpoint,
                "--worker-id", machine.name, "--lease-seconds", "120", "--heartbeat-seconds", "0.5", "--poll-seconds", "1",
            ], logPath: scratch.appendingPathComponent("\(machine.name).log").path))
        }
        func logs() -> String { children.map { "\($0.logPath):\n\($0.log)" }.joined(separator: "\n") }

        // Window 0 is held at its store; every other window is stored by the other worker.
        let held = try watch.wait(reading: { try store.windows(id: id).filter { $0.kind == .window } }) { windows in
            windows[0].status == .running && windows.dropFirst().allSatisfy { $0.status == .succeeded }
        }
        let holdingWorker = try XCTUnwrap(held[0].workerId, logs())
        // Both workers are connected right now, each from its own veth address and from nowhere else.
        XCTAssertEqual(try TestDatabase.psql(url, """
            SELECT string_agg(DISTINCT host(client_addr), ' ' ORDER BY host(client_addr)) FROM pg_stat_activity
            WHERE client_addr IS NOT NULL
            """), "10.213.1.2 10.213.2.2", "every TCP session comes over a veth")
        try holder.execute(Queries.rollback)

        let done = try watch.wait(for: id, store) { $0.status.isTerminal }
        XCTAssertEqual(done.status, .succeeded, logs())

        // What a client sees: the job JSON names both workers, window 0 by the held one, the rest by the other.
        let base = try serverBase(server)
        let (status, body) = try get(base + "/jobs/\(id.uuidString.lowercased())")
        XCTAssertEqual(status, 200, String(decoding: body, as: UTF8.self))
        let job = try XCTUnwrap(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        XCTAssertEqual(job["status"] as? String, "succeeded")
        let progress = try XCTUnwrap(job["progress"] as? [String: Any])
        XCTAssertEqual(progress["frames_done"] as? Int, frameCount)
        XCTAssertEqual(progress["frames_total"] as? Int, frameCount)
        let windows = try XCTUnwrap(job["windows"] as? [[String: Any]])
        XCTAssertEqual(windows.count, windowCount)
        let workers = windows.map { $0["worker"] as? String }
        XCTAssertEqual(Set(workers.compactMap { $0 }), ["east/0", "west/0"], "windows of one job ran on both machines")
        XCTAssertEqual(workers.first ?? nil, holdingWorker)
        XCTAssertTrue(workers.dropFirst().allSatisfy { $0 != nil && $0 != holdingWorker }, "\(workers)")
        XCTAssertEqual(Set(windows.compactMap { $0["status"] as? String }), ["succeeded"])
        XCTAssertEqual(try TestDatabase.psql(url, "SELECT count(*), count(DISTINCT frame_index) FROM job_frames"),
                       "\(frameCount)|\(frameCount)", "every frame stored once, the test's row gone")

        let (npyStatus, npy) = try get(base + "/jobs/\(id.uuidString.lowercased())/disparity.npy")
        XCTAssertEqual(npyStatus, 200)
        let disparity = try NPY.decode(npy)
        XCTAssertEqual(disparity.shape, [frameCount, 32, 64])
        XCTAssertTrue(disparity.data.allSatisfy { $0.isFinite && $0 >= 0 }, "disparity is |flow|, finite")

        for child in children { child.signal(SIGTERM) }
        for child in children { XCTAssertEqual(child.wait(timeout: hangGuard), 0, child.log) }
    }

    /// `http://127.0.0.1:PORT` of a `serve` started on port 0, read from its log.
    private func serverBase(_ server: ChildProcess) throws -> String {
        let listening = try XCTUnwrap(server.waitForOutput(matching: #"listening.*address=127\.0\.0\.1:(\d+)|address=127\.0\.0\.1:(\d+).*listening"#,
                                                           timeout: hangGuard), server.log)
        return "http://127.0.0.1:\(listening[1].isEmpty ? listening[2] : listening[1])"
    }

    private func get(_ url: String) throws -> (Int, Data) {
        final class Box: @unchecked Sendable { var result: Result<(Int, Data), Error> = .failure(URLError(.unknown)) }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 60
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { box.result = .failure(error) } else {
                box.result = .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
            }
            done.signal()
        }.resume()
        done.wait()
        return try box.result.get()
    }
}

/// What stops the namespace test from running; its message says what the machine lacks.
struct NamespaceLabError: Error, CustomStringConvertible {
    let description: String
}

/// Network namespaces made by this test process, named `dynstereo-<pid>-<role>`, with veth pairs between
/// them and a PostgreSQL cluster inside one. `destroy()` kills every process left in them and deletes them
/// (their veths go with them); a run that died before it could is cleaned up by the next one, which removes
/// the namespaces of test processes no longer alive.
final class NamespaceLab {
    let ipPath: String
    private let prefix = "dynstereo-\(getpid())-"
    private var made: [String] = []
    private var clusters: [(directory: String, bin: String)] = []

    init() throws {
        guard getuid() == 0 else {
            throw NamespaceLabError(description: "the network namespace test needs root (ip netns, veth); run the suite as root, as CI does")
        }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw NamespaceLabError(description: "the network namespace test needs iproute2's `ip` (bash .ci/setup --tests installs it)")
        }
        ipPath = ip
        removeLeftovers()
    }

    func namespace(_ role: String) -> String { prefix + role }

    /// Runs `ip arguments...`; its output, or an error carrying it.
    @discardableResult
    func ip(_ arguments: [String]) throws -> String {
        let result = try TestDatabase.run(ipPath, arguments)
        guard result.status == 0 else {
            throw NamespaceLabError(description: "ip \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A new namespace; only its loopback exists, down.
    func add(_ role: String) throws -> String {
        let name = namespace(role)
        try ip(["netns", "add", name])
        made.append(name)
        return name
    }

    /// A veth pair made inside `first` with its peer moved straight into `second`, so that neither end ever
    /// exists in the host's namespace; each end gets its address (CIDR) and is brought up.
    func link(_ first: String, _ firstName: String, _ firstAddress: String, to second: String, _ secondName: String,
              _ secondAddress: String) throws {
        try ip(["-n", first, "link", "add", "name", firstName, "type", "veth", "peer", "name", secondName, "netns", second])
        try ip(["-n", first, "addr", "add", firstAddress, "dev", firstName])
        try ip(["-n", second, "addr", "add", secondAddress, "dev", secondName])
        try ip(["-n", first, "link", "set", firstName, "up"])
        try ip(["-n", second, "link", "set", secondName, "up"])
    }

    /// A PostgreSQL cluster run inside `namespace`: TCP on `listen` (addresses of that namespace) for
    /// `clients` only, and a Unix socket in its folder for the test. Trust authentication: a test cluster.
    struct Cluster {
        let directory: String
        let port = 5432
        var socketURL: String { "postgresql://postgres@/postgres?host=\(directory)&port=\(port)" }
    }

    func startPostgres(in namespace: String, listen: [String], clients: [String]) throws -> Cluster {
        guard let bin = (["/usr/lib/postgresql/15/bin"] + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin" })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") }) else {
            throw NamespaceLabError(description: "PostgreSQL server binaries not found (bash .ci/setup installs postgresql)")
        }
        let cluster = Cluster(directory: "/tmp/dynstereo-netns-\(getpid())-\(clusters.count)")
        try? FileManager.default.removeItem(atPath: cluster.directory)
        try FileManager.default.createDirectory(atPath: cluster.directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        clusters.append((cluster.directory, bin))
        try check(TestDatabase.run("/usr/bin/env", ["chown", "postgres:postgres", cluster.directory]), "chown")
        try check(TestDatabase.run("/usr/bin/env", ["runuser", "-u", "postgres", "--", bin + "/initdb", "-D", cluster.directory,
                                                    "--auth=trust", "-U", "postgres"]), "initdb")
        let hba = ["local all all trust"] + clients.map { "host all all \($0)/32 trust" }
        try (hba.joined(separator: "\n") + "\n").write(toFile: cluster.directory + "/pg_hba.conf", atomically: false, encoding: .utf8)
        // Started inside the namespace, the postmaster binds addresses that exist only there.
        try check(TestDatabase.run(ipPath, ["netns", "exec", namespace, "runuser", "-u", "postgres", "--", bin + "/pg_ctl",
                                            "-D", cluster.directory, "-w", "-t", "60", "-l", cluster.directory + "/log", "-o",
                                            "-p \(cluster.port) -k \(cluster.directory) -c listen_addresses=\(listen.joined(separator: ",")) -c fsync=off",
                                            "start"]), "pg_ctl start")
        return cluster
    }

    private func check(_ result: (status: Int32, output: String), _ what: String) throws {
        guard result.status == 0 else { throw NamespaceLabError(description: "\(what) failed: \(result.output)") }
    }

    /// Stops the clusters, kills whatever else runs in the namespaces (SIGKILL: a test's leftovers), deletes
    /// the namespaces and the clusters' folders.
    func destroy() {
        for cluster in clusters {
            _ = try? TestDatabase.run("/usr/bin/env", ["runuser", "-u", "postgres", "--", cluster.bin + "/pg_ctl", "-D", cluster.directory,
                                                        "-m", "immediate", "-w", "stop"])
        }
        for name in made.reversed() { remove(name) }
        made.removeAll()
        for cluster in clusters { try? FileManager.default.removeItem(atPath: cluster.directory) }
        clusters.removeAll()
    }

    private func remove(_ name: String) {
        for pid in ((try? ip(["netns", "pids", name])) ?? "").split(separator: "\n").compactMap({ pid_t($0) }) {
            kill(pid, SIGKILL)
        }
        _ = try? ip(["netns", "delete", name])
    }

    /// Namespaces (and cluster folders) of earlier test processes that are gone.
    private func removeLeftovers() {
        let names = ((try? ip(["netns", "list"])) ?? "").split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        for name in names where name.hasPrefix("dynstereo-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = pid_t(parts[1]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            remove(name)
            for folder in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where folder.hasPrefix("dynstereo-netns-\(pid)-") {
                try? FileManager.default.removeItem(atPath: "/tmp/" + folder)
            }
        }
    }
}
