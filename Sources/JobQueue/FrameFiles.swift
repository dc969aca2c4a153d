// How the per-frame rows of migration 0006 map onto the product's result paths.
import Foundation

/// The result files a job's per-frame rows answer for: `disparity.npy` (assembled from every frame's
/// float32 disparity) and one PNG per frame in each folder. The paths are the product's (`ResultFiles`).
public enum FrameFiles {
    public static let disparityArray = "disparity.npy"

    /// A folder of per-frame PNGs and the `job_frames` column it is read from.
    public enum Kind: String, CaseIterable, Sendable {
        case disparity, depth, color, video

        var column: String {
            switch self {
            case .disparity: return "disparity_png"
            case .depth: return "depth_png"
            case .color: return "color_png"
            case .video: return "video_png"
            }
        }

        func isStored(depth: Bool, color: Bool, video: Bool) -> Bool {
            switch self {
            case .disparity: return true
            case .depth: return depth
            case .color: return color
            case .video: return video
            }
        }
    }

    /// `disparity/0007.png` -> (.disparity, "0007"); nil for anything else.
    public static func parse(_ path: String) -> (Kind, String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let kind = Kind(rawValue: String(parts[0])), parts[1].hasSuffix(".png"), parts[1].count > 4 else { return nil }
        return (kind, String(parts[1].dropLast(4)))
    }

    /// The .npy preamble of a float32 [frames, height, width] array (format 1.0, padded to 64 bytes, as
    /// `NPY.encode` writes it), to be followed by the frames' little-endian floats.
    public static func npyHeader(frames: Int, height: Int, width: Int) -> Data {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(frames), \(height), \(width)), }"
        let unpadded = 6 + 2 + 2 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    /// The size of the whole `disparity.npy`: known before any frame is read (for Content-Length).
    public static func npySize(frames: Int, height: Int, width: Int) -> Int {
        npyHeader(frames: frames, height: height, width: width).count + frames * height * width * 4
    }
}

/// The stored frames of a job with per-frame rows, and the sizes of their files, known without reading them.
public struct FrameLayout: Equatable, Sendable {
    public struct Frame: Equatable, Sendable {
        public let index: Int
        public let name: String
        public let height: Int
        public let width: Int
        /// The byte length of each stored per-frame file (a kind absent when not stored).
        public let sizes: [FrameFiles.Kind: Int]
    }

    public let frames: [Frame]
    /// Whole-file results stored in chunks (migration 0007: `video.mp4`, `color.mp4`, `points/NNNN.ply`).
    public var wholeFiles: [StoredFile] = []
    /// Whether the finishing step is stored; nil for a backend that cannot tell (then: every frame coloured).
    public var finished: Bool?
    /// The job's result kinds; nil: every kind (`disparity.npy` listed once finished).
    public var kinds: Set<ResultKind>?

    /// A result file stored in chunks, and its size.
    public struct StoredFile: Equatable, Sendable {
        public let path: String
        public let size: Int

        public init(path: String, size: Int) {
            self.path = path
            self.size = size
        }
    }

    public init(frames: [Frame], wholeFiles: [StoredFile] = [], finished: Bool? = nil, kinds: Set<ResultKind>? = nil) {
        self.frames = frames
        self.wholeFiles = wholeFiles
        self.finished = finished
        self.kinds = kinds
    }

    /// The frames hold one video's shape: the first frame's.
    public var height: Int { frames.first?.height ?? 0 }
    public var width: Int { frames.first?.width ?? 0 }
    /// Bytes of one frame's float32 disparity.
    public var frameBytes: Int { height * width * 4 }
    public var npyHeader: Data { FrameFiles.npyHeader(frames: frames.count, height: height, width: width) }
    /// The size of `disparity.npy`.
    public var npySize: Int { FrameFiles.npySize(frames: frames.count, height: height, width: width) }
    /// Whether every frame is complete: coloured by the finishing step (only then is `disparity.npy` listed).
    public var isFinished: Bool { !frames.isEmpty && (finished ?? frames.allSatisfy { $0.sizes[.color] != nil }) }

    /// Every result file with its size, sorted by path as `JobStore.resultPaths` lists them.
    public var files: [(path: String, size: Int)] {
        var files: [(path: String, size: Int)] = isFinished && kinds?.contains(.npy) != false ? [(FrameFiles.disparityArray, npySize)] : []
        if isFinished { files += wholeFiles.map { ($0.path, $0.size) } }
        for kind in FrameFiles.Kind.allCases {
            for frame in frames { if let size = frame.sizes[kind] { files.append(("\(kind.rawValue)/\(frame.name).png", size)) } }
        }
        return files.sorted { $0.path < $1.path }
    }
}
