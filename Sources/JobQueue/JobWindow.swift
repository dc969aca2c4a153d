// Windows, the unit of work: what a job is cut into, what a worker claims, and what a window stores.
import Foundation

/// One window of a job (a row of `job_windows`), or the job's finishing step, as the API reports it.
///
/// Windows move through the same five states as jobs, by the same `JobTransition`s (claim, succeed, fail,
/// retry, hand-back, cancel), each with its own lease, attempts and backoff. A job's own status follows from
/// its windows' (`Queries.deriveJobStatus`, documented on `JobStatus`).
public struct JobWindow: Equatable, Sendable {
    /// A window runs the network on frames; the finishing step renders what needs the whole video.
    public enum Kind: String, Sendable {
        case window
        case finish
        /// A video job's preparing step: decodes the uploaded video into the job's input frames; the
        /// windows wait for it (migration 0007).
        case prepare
    }

    /// 0..<windows for the windows; the finishing step comes last.
    public let index: Int
    public let kind: Kind
    /// The input frames the network reads (the whole video for the finishing step).
    public let inputFrames: Range<Int>
    /// The input frames whose results this window stores (empty for the finishing step).
    public let resultFrames: Range<Int>
    public let status: JobStatus
    public let attempt: Int
    /// The worker that runs or last ran it.
    public let workerId: String?
    /// Refinement iterations of the current attempt so far, and in all (nil until its worker said).
    public let iterationsDone: Int
    public let iterationsTotal: Int?
    /// The last attempt's error.
    public let error: JobErrorInfo?

    /// The windows of a video (`WindowAssignment.plan`) and its finishing step, as `JobStore.enqueue` stores them;
    /// with `prepare`, a preparing step after them (numbered last, claimed first: the windows wait for it).
    public static func plan(frames: Int, kernelSize: Int, prepare: Bool = false) -> [(index: Int, kind: Kind, inputFrames: Range<Int>, resultFrames: Range<Int>)] {
        let windows = WindowAssignment.plan(frames: frames, kernelSize: kernelSize)
        return windows.map { ($0.index, Kind.window, $0.inputFrames, $0.frames) }
            + [(windows.count, Kind.finish, 0..<frames, 0..<0)]
            + (prepare ? [(windows.count + 1, Kind.prepare, 0..<frames, 0..<0)] : [])
    }
}

/// A window (or finishing step) a worker has claimed. `lease` is the fencing token of this claim: every later
/// write presents it, so a worker that lost the window changes nothing.
public struct ClaimedWindow: Sendable {
    public let jobId: UUID
    public let lease: Int
    public let window: JobWindow
    public let parameters: JobParameters
    /// The job's frames.
    public let framesTotal: Int
    /// What the frames came from, and the MP4s' rate (`N/D`).
    public var source: JobSource = .frames
    public var videoRate: String = "30/1"

    public var index: Int { window.index }
    public var attempt: Int { window.attempt }
    public var kind: JobWindow.Kind { window.kind }

    /// Positions within the window's output whose results it stores.
    public var keptPositions: Range<Int> {
        (window.resultFrames.lowerBound - window.inputFrames.lowerBound)..<(window.resultFrames.upperBound - window.inputFrames.lowerBound)
    }
}

/// One output frame of a window: a row of `job_frames`. Its `frameIndex` is the input frame it is the
/// disparity of.
public struct FrameResult: Equatable, Sendable {
    public let frameIndex: Int
    /// The result files' name (the input frame's name without `.png`).
    public let name: String
    public let height: Int
    public let width: Int
    /// float32 little-endian, H × W, row-major.
    public let disparity: Data
    /// Nil when the job's `outputs` leave out `disparity`.
    public let disparityPNG: Data?
    public let depthPNG: Data?
    /// The frame's smallest and largest finite disparity (NaN when there is none).
    public let minDisparity: Float
    public let maxDisparity: Float

    public init(frameIndex: Int, name: String, height: Int, width: Int, disparity: Data, disparityPNG: Data?,
                depthPNG: Data?, minDisparity: Float, maxDisparity: Float) {
        precondition(disparity.count == height * width * 4, "a frame's disparity is H × W float32")
        self.frameIndex = frameIndex
        self.name = name
        self.height = height
        self.width = width
        self.disparity = disparity
        self.disparityPNG = disparityPNG
        self.depthPNG = depthPNG
        self.minDisparity = minDisparity
        self.maxDisparity = maxDisparity
    }
}

/// What the finishing step renders for one stored frame: its colouring, and the left frame beside it.
public struct RenderedFrame: Sendable {
    /// Nil when the job's `outputs` leave out `color`.
    public let colorPNG: Data?
    public let videoPNG: Data?

    public init(colorPNG: Data?, videoPNG: Data?) {
        self.colorPNG = colorPNG
        self.videoPNG = videoPNG
    }
}

/// A stored frame handed to the finishing step's renderer.
public struct StoredFrame: Sendable {
    public let frameIndex: Int
    public let height: Int
    public let width: Int
    public let disparity: Data
    /// The input's left PNG (nil once retention removed it).
    public let leftPNG: Data?
    /// The result files' name.
    public var name: String = ""
}
