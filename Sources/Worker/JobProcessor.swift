// What a worker does with a claimed job, behind a protocol so the queue mechanics test without the network.
import Foundation
import JobQueue

/// Turns a job's frames into its result files. Called on a worker thread; may take minutes.
///
/// - `progress(framesDone, framesTotal)` is reported to the database by the heartbeat.
/// - `isCancelled()` turns true when the job was cancelled, its lease was lost, or the worker is shutting
///   down; the processor should then throw `CancellationError` soon (between network iterations).
/// - Throw a `PermanentJobError` for input that can never work (the job fails at once, without retries);
///   any other error spends an attempt and the job is retried with backoff.
public protocol JobProcessor: AnyObject {
    func process(frames: [InputFrame], parameters: JobParameters,
                 progress: @escaping (_ framesDone: Int, _ framesTotal: Int) -> Void,
                 isCancelled: @escaping () -> Bool) throws -> [ResultBlob]
}

/// An error a retry cannot fix (an undecodable frame, mismatched stereo sizes, a video the network
/// rejects). `code` is stored with the job for clients to branch on.
public protocol PermanentJobError: Error, CustomStringConvertible {
    var code: String { get }
}

/// A job's input is unusable.
public struct BadJobInput: PermanentJobError {
    public let message: String
    public var code: String { "bad_input" }
    public var description: String { message }

    public init(_ message: String) {
        self.message = message
    }
}
