// `dynstereo serve`: Runs the HTTP API server until SIGTERM or SIGINT, then drains and exits.
import APIKeys
import ArgumentParser
import Dispatch
import Foundation
import HTTPTransport
import JobQueue
import JobsAPI
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Runs the HTTP API server.",
        discussion: "Applies pending migrations, then serves the API documented at /openapi.yaml. SIGTERM stops accepting, lets requests in progress finish, and exits.")

    @Option(help: "libpq connection string or URI (default: $DATABASE_URL).")
    var database: String?

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:8080"

    @Option(help: "Folder for uploads while they are validated.")
    var uploadDir = NSTemporaryDirectory()

    @Option(help: "Largest accepted upload, in MiB.")
    var maxUploadMb = 4096

    @Option(help: "Most frames a job may have.")
    var maxFrames = 1000

    @Option(help: "Most pixels a frame may have.")
    var maxPixels = 4096 * 4096

    @Option(help: ArgumentHelp("Jobs an API key may have queued or running at once, unless the key sets its own (0: no limit).",
                               discussion: "A submission past it is answered 429 with Retry-After: 30. No limit applies while no key exists."))
    var maxQueuedJobsPerKey = 10

    @Option(help: ArgumentHelp("Request body bytes an API key may upload per UTC day, unless the key sets its own (0: no limit).",
                               discussion: "Default 16 GiB. A submission past it is answered 429 with Retry-After: the seconds until midnight UTC."))
    var maxUploadBytesPerDayPerKey = 16 << 30

    @Option(help: "Threads that run handlers and write responses.")
    var threads = 8

    @Option(help: ArgumentHelp("Most simultaneous connections.",
                               discussion: "At the cap the longest-idle keep-alive connection is closed to admit a new one; with none idle, a newcomer is answered 503."))
    var maxConnections = 1024

    @Option(help: ArgumentHelp("Most simultaneous connections from one client address.",
                               discussion: "Past it, that address's longest-idle connection makes room. Behind a proxy every client shares the proxy's address."))
    var maxConnectionsPerAddress = 256

    @Option(help: ArgumentHelp("Memory for status polls' answers, in MiB (0: every poll reads PostgreSQL).",
                               discussion: "Kept true by PostgreSQL's change notifications, on a LISTEN session of its own (a direct connection, not a transaction-pooling PgBouncer)."))
    var pollCacheMb = 64

    @Flag(help: "Do not apply pending migrations at start.")
    var skipMigrations = false

    func validate() throws {
        guard maxUploadMb > 0, maxFrames > 0, maxPixels > 0, threads > 0, maxConnections > 0, maxConnectionsPerAddress > 0 else {
            throw ValidationError("limits and counts must be positive")
        }
        guard maxQueuedJobsPerKey >= 0, maxUploadBytesPerDayPerKey >= 0 else {
            throw ValidationError("per-key limits must be 0 (no limit) or positive")
        }
        guard (0...(1 << 20)).contains(pollCacheMb) else {
            throw ValidationError("--poll-cache-mb must be 0 (off) to 1048576, got \(pollCacheMb)")
        }
    }

    func run() throws {
        let logger = Logger(label: "dynstereo.serve")
        let url = try DatabaseURL.resolve(database)
        if !skipMigrations { try Migrator(url: url).run() }
        let keyLimits = KeyLimits(maxQueuedJobs: maxQueuedJobsPerKey == 0 ? nil : maxQueuedJobsPerKey,
                                  maxUploadBytesPerDay: maxUploadBytesPerDayPerKey == 0 ? nil : maxUploadBytesPerDayPerKey)
        let store = try JobStore(url: url, defaultKeyLimits: keyLimits)

        var server = HTTPServerConfiguration()
        (server.host, server.port) = try Self.hostPort(listen)
        server.handlerThreads = threads
        server.maxConnections = maxConnections
        server.maxConnectionsPerAddress = maxConnectionsPerAddress
        var api = JobsAPIConfiguration()
        api.uploadDirectory = URL(fileURLWithPath: uploadDir)
        api.maxUploadBytes = maxUploadMb << 20
        api.frameLimits.maxFrames = maxFrames
        api.frameLimits.maxPixelsPerFrame = maxPixels
        let keys = try APIKeyStore(url: url)
        if try !keys.anyKeys() {
            logger.warning("no API keys exist: the API is open to anyone who can reach it (create one with `dynstereo keys create`)")
        }
        // One secret per database (migration 0008), so a URL signed by one server opens on every other.
        let signer = URLSigner(secret: try store.urlSigningSecret(generate: URLSigner.generateSecret))
        // Polls and key checks from memory, kept true by the change notifications (migration 0010); until
        // the listener first LISTENs, and whenever it has lost its session, they read PostgreSQL.
        let pollCache = pollCacheMb > 0 ? JobPollCache(capacityBytes: pollCacheMb << 20) : nil
        let verifier = APIKeyVerifier(store: keys, caching: pollCache != nil)
        let listener = try pollCache.map { cache in
            try ChangeListener(url: url) { change in
                cache.apply(change)
                verifier.apply(change)
            }
        }
        listener?.start()
        let application = JobsHTTPApplication(backend: JobStoreBackend(store: store, loader: MediaFrameLoader(maxInflatedBytes: api.maxUploadBytes)),
                                              configuration: api,
                                              authenticator: BearerAuthenticator(verifier: verifier),
                                              signer: signer, pollCache: pollCache)
        let httpServer = HTTPServer(configuration: server, application: application)
        try httpServer.start()

        // Signals arrive as Dispatch events on a queue of their own, not as async handlers.
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: DispatchQueue(label: "dynstereo.signals"))
            source.setEventHandler {
                logger.info("signal received, draining", metadata: ["signal": "\(signalNumber)"])
                httpServer.shutdown()
            }
            source.resume()
            sources.append(source)
        }
        httpServer.wait()
        listener?.stop()
        withExtendedLifetime(sources) {}
        logger.info("stopped")
    }

    static func hostPort(_ address: String) throws -> (String, UInt16) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw ValidationError("--listen must be HOST:PORT, got '\(address)'")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ValidationError("--listen must be HOST:PORT, got '\(address)'") }
        return (host, port)
    }
}
