// Validates the two uploaded tars with Media (every frame decoded, ordered, counted and sized as `dynstereo infer`
// would see them) and collects each frame's PNG bytes for the queue, mapping media errors to API statuses.
import Foundation
import JobQueue
import Media

/// The service's `FrameLoader`: Media's `FrameSet` decodes and checks each side; the pair checks are those of
/// `StereoSequence`. Sides are decoded one at a time and their pixels dropped at once, so peak memory is one
/// side's decoded frames plus both sides' PNG bytes.
public struct MediaFrameLoader: FrameLoader {
    public init() {}

    public func loadFrames(left: URL, right: URL, limits: FrameLimits) throws -> [InputFrame] {
        let sequenceLimits = SequenceLimits(maxFrames: limits.maxFrames, maxPixelsPerFrame: limits.maxPixelsPerFrame)
        do {
            let leftSide = try Side(url: left, limits: sequenceLimits)
            let rightSide = try Side(url: right, limits: sequenceLimits)
            guard leftSide.fileNames.count == rightSide.fileNames.count else {
                throw MediaError.frameCountMismatch(left: leftSide.fileNames.count, right: rightSide.fileNames.count)
            }
            // Every frame of a side has one size (FrameSet checks), so comparing the first pair covers all.
            guard leftSide.size == rightSide.size else {
                throw MediaError.frameSizeMismatch(frame: leftSide.fileNames[0], leftWidth: leftSide.size.width,
                                                   leftHeight: leftSide.size.height, rightWidth: rightSide.size.width,
                                                   rightHeight: rightSide.size.height)
            }
            let leftBytes = try Self.pngBytes(left, fileNames: leftSide.fileNames)
            let rightBytes = try Self.pngBytes(right, fileNames: rightSide.fileNames)
            return leftSide.fileNames.indices.map { index in
                InputFrame(index: index, name: leftSide.names[index], left: leftBytes[index], right: rightBytes[index])
            }
        } catch let error as MediaError {
            throw Self.apiError(error)
        }
    }

    /// What is kept of a decoded side.
    private struct Side {
        let fileNames: [String]
        let names: [String]
        let size: (width: Int, height: Int)

        init(url: URL, limits: SequenceLimits) throws {
            let set = try FrameSet.load(url, limits: limits)
            fileNames = set.fileNames
            names = set.names
            size = (set.images[0].width, set.images[0].height)
        }
    }

    /// The raw bytes of the frames `FrameSet` accepted, in its order. Entries it skipped (hidden folders, other
    /// files) are skipped here by the same rule; a second entry with an accepted name would have failed there.
    private static func pngBytes(_ url: URL, fileNames: [String]) throws -> [Data] {
        let wanted = Dictionary(uniqueKeysWithValues: fileNames.enumerated().map { ($1, $0) })
        var found = [Data?](repeating: nil, count: fileNames.count)
        let reader = try TarReader(url: url)
        while let entry = try reader.next() {
            guard entry.kind == .file, let index = wanted[entry.fileName], found[index] == nil else { continue }
            let folders = entry.path.split(separator: "/").dropLast()
            if folders.contains(where: { $0.hasPrefix(".") || $0 == "__MACOSX" }) { continue }
            found[index] = try reader.readContents()
        }
        guard found.allSatisfy({ $0 != nil }) else {
            throw MediaError.badTar(archive: url.lastPathComponent, reason: "changed while it was being read")
        }
        return found.map { $0! }
    }

    /// The status and code a client gets for each media error.
    static func apiError(_ error: MediaError) -> APIError {
        let message = error.description
        switch error.underlying {
        case .tooManyFrames: return APIError(.payloadTooLarge, "too_many_frames", message)
        case .imageTooLarge: return APIError(.payloadTooLarge, "frame_too_large", message)
        case .fileTooLarge: return APIError(.payloadTooLarge, "file_too_large", message)
        case .frameCountMismatch: return .unprocessable("frame_count_mismatch", message)
        case .frameSizeMismatch, .inconsistentFrameSize: return .unprocessable("frame_size_mismatch", message)
        case .noFrames: return .unprocessable("missing_frames", message)
        case .notPNG, .pngDecode: return .unprocessable("invalid_png", message)
        case .badTar, .unsafeTarPath, .badGzip: return .unprocessable("invalid_tar", message)
        case .duplicateFrame: return .unprocessable("duplicate_frame", message)
        case .unreadable: return APIError(.internalError, "upload_storage", message)
        default: return .unprocessable("invalid_frames", message)
        }
    }
}
