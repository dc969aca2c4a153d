// `dynstereo work`: Runs a headless worker that takes jobs from the database.
import ArgumentParser
import Foundation
import JobQueue
import Logging
import TensorKernels
import Worker

struct WorkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work",
        abstract: "Runs a headless worker that takes jobs from the database.",
        discussion: """
            Claims one window at a time per slot, runs the network on --threads cores per slot, and stores the \
            results in the database. SIGTERM or SIGINT stops claiming; the running window is handed back \
            (default) or finished.
            """)

    @Option(help: "libpq connection string or URI (default: $DATABASE_URL).")
    var database: String?
    @Option(help: "A DynamicStereo checkpoint (dynamic_stereo_sf.pth or dynamic_stereo_dr_sf.pth).")
    var checkpoint: String
    @Option(help: "Jobs run at once.")
    var concurrency: Int = 1
    @Option(help: ArgumentHelp("Cores each running window's network uses (default: all cores / --concurrency, at least 1).",
                               discussion: "OpenBLAS stays single-threaded; the network splits its work over this many threads."))
    var threads: Int?
    @Option(help: "Seconds a claim stays valid without a heartbeat; a dead worker's job is re-queued after it.")
    var leaseSeconds: Double = 20
    @Option(help: "Seconds between heartbeats.")
    var heartbeatSeconds: Double = 2
    @Option(help: "Seconds between polls when no notification arrives.")
    var pollSeconds: Double = 5
    @Option(help: "What SIGTERM does to a running job: hand-back (re-queue it, no attempt spent) or finish.")
    var onSigterm: String = WorkerConfiguration.StopBehaviour.handBack.rawValue
    @Option(help: "The id recorded on claimed jobs (default: host:pid).")
    var workerId: String?
    @Option(help: ArgumentHelp("Days after a job finished when its inputs and results are deleted (0: keep them forever).",
                               discussion: "The job row stays; its results read as expired (410). Checked every 5 minutes, 100 jobs per transaction."))
    var retentionDays: Int = 7

    /// The cores per slot: `--threads`, or the machine's cores shared evenly between the slots.
    static func threadsPerSlot(_ threads: Int?, concurrency: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        threads ?? max(1, cores / max(1, concurrency))
    }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
    }

    func run() throws {
        guard let onStop = WorkerConfiguration.StopBehaviour(rawValue: onSigterm) else {
            throw ValidationError("--on-sigterm must be one of: \(WorkerConfiguration.StopBehaviour.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var configuration = WorkerConfiguration(concurrency: concurrency, leaseSeconds: leaseSeconds,
                                                heartbeatInterval: heartbeatSeconds, pollInterval: pollSeconds,
                                                reapInterval: min(5, leaseSeconds / 2), onStop: onStop)
        if let workerId { configuration.workerId = workerId }
        guard retentionDays >= 0 else { throw ValidationError("--retention-days must be 0 (keep forever) or positive") }
        configuration.resultRetention = retentionDays == 0 ? nil : Double(retentionDays) * 86_400
        try configuration.validate()
        let url = try DatabaseURL.resolve(database)

        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "dynstereo.work")
        // Load before touching the queue: a worker with a wrong checkpoint must not claim jobs.
        let processor = try EstimatorProcessor(checkpoint: URL(fileURLWithPath: checkpoint))
        // After loading: the checkpoint's temporaries go back to the system, the network's stay in the heap.
        _ = AllocationPolicy.keepFreedMemory
        // The one thread setting every split of the network reads (OpenBLAS itself stays on one thread): with
        // --concurrency N each of the N running windows splits its work over this many cores.
        ComputeThreads.count = Self.threadsPerSlot(threads, concurrency: concurrency)
        logger.info("checkpoint loaded", metadata: ["checkpoint": "\(checkpoint)", "threadsPerWindow": "\(ComputeThreads.count)"])
        let worker = try QueueWorker(url: url, processors: Array(repeating: processor, count: concurrency),
                                     configuration: configuration, logger: logger)
        worker.runUntilSignalled()
    }
}
