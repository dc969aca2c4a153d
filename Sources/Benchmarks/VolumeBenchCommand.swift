// `dynstereo volume-bench` (hidden): the two programs issue 13's volume measurement needs beside the
// service (Benchmarks/large-job drives them): a worker whose "network" writes incompressible noise, so a job
// whose results pass 1.5 GB takes minutes instead of hours, and the disparity.npy that noise must give, to
// check a download against.
import ArgumentParser
import Foundation
import JobQueue
import Logging
import Media
import Worker

/// The volume measurement's programs; not a user command.
public struct VolumeBenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "volume-bench", abstract: "Programs for the large-job measurement (a noise worker, the expected disparity.npy).",
        shouldDisplay: false, subcommands: [NoiseWorkCommand.self, ExpectedArrayCommand.self])

    public init() {}
}

/// `volume-bench work`: a real `QueueWorker` (claims, leases, heartbeats, per-frame stores, the finishing
/// step) with `NoiseProcessor` in place of the network.
struct NoiseWorkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "work", abstract: "Runs a worker whose network writes noise.")

    @Option(help: "libpq connection string or URI (default: $DATABASE_URL).")
    var database: String?
    @Option(help: "The id recorded on claimed windows.")
    var workerId = "noise"
    @Option(help: "Windows run at once.")
    var concurrency = 1

    func run() throws {
        let url = try DatabaseURL.resolve(database)
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var configuration = WorkerConfiguration(workerId: workerId, concurrency: concurrency)
        configuration.resultRetention = nil
        try configuration.validate()
        let processor = NoiseProcessor()
        let worker = try QueueWorker(url: url, processors: Array(repeating: processor, count: concurrency),
                                     configuration: configuration, logger: Logger(label: "dynstereo.volume-bench"))
        worker.runUntilSignalled()
    }
}

/// `volume-bench expect`: writes to stdout, frame by frame, the disparity.npy a job of `--frames` frames of
/// H × W gets from `NoiseProcessor`. The header is written here by the NPY format's rules rather than by the
/// service's code, so that a download hashed against it checks the service's header too.
struct ExpectedArrayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "expect", abstract: "Writes the disparity.npy the noise worker gives.")

    @Option var frames: Int
    @Option var height: Int
    @Option var width: Int

    func run() throws {
        guard frames >= 1, height >= 1, width >= 1 else { throw ValidationError("--frames, --height and --width must be at least 1") }
        // NPY 1.0: magic, version, a little-endian u16 header length, then the header dict padded with spaces
        // and ended by a newline so that the data starts at a multiple of 64.
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(frames), \(height), \(width)), }"
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var header = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
        header += Data([UInt8(dict.utf8.count & 0xFF), UInt8(dict.utf8.count >> 8)]) + Data(dict.utf8)
        let output = FileHandle.standardOutput
        try output.write(contentsOf: header)
        for frame in 0..<frames {
            try output.write(contentsOf: NoiseProcessor.disparity(frame: frame, count: height * width).withUnsafeBytes { Data($0) })
        }
    }
}

/// Stands in for the network in the volume measurement: every frame's disparity is noise determined by the
/// frame's index alone (so any worker, any window and `volume-bench expect` agree on it), at the size of the
/// job's input frames. The values carry 24 random bits each: neither PostgreSQL's compression nor PNG's
/// deflate can make them much smaller, so the stored and downloaded bytes are what a real video's would be.
public final class NoiseProcessor: JobProcessor {
    public init() {}

    public func process(window: ClaimedWindow, frames: [InputFrame], progress: @escaping (Int, Int) -> Void,
                        isCancelled: @escaping () -> Bool) throws -> [FrameResult] {
        guard let first = frames.first else { throw BadJobInput("a window without frames") }
        let size = try PNG.decode(first.left)
        var values: [Float] = []
        values.reserveCapacity(window.window.resultFrames.count * size.width * size.height)
        for frame in window.window.resultFrames {
            if isCancelled() { throw CancellationError() }
            values += Self.disparity(frame: frame, count: size.width * size.height)
        }
        progress(1, 1)
        return try WindowResults.make(window, names: window.keptPositions.map { frames[$0].name }, disparity: values,
                                      height: size.height, width: size.width)
    }

    /// `count` values in [0, 256), multiples of 2^-16: SplitMix64 seeded with the frame index, the top 24
    /// bits of each draw.
    static func disparity(frame: Int, count: Int) -> [Float] {
        var state = UInt64(frame) &* 0x9E37_79B9_7F4A_7C15 &+ 0x1234_5678
        return (0..<count).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / 65_536
        }
    }
}
