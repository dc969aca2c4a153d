// Validates the two uploaded tars with Media (every frame decoded, ordered, counted and sized as `dynstereo infer`
// would see them) and reads each frame pair's PNG bytes back for the queue, mapping media errors to API statuses.
import Foundation
import HTTPTransport
import JobQueue
import Media

/// The service's `FrameLoader`: Media's `FrameCatalog` decodes and checks each side one frame at a time,
/// keeping names and sizes only; the pair checks are those of `StereoSequence`. The frames' bytes are read
/// back from the tars when the job is stored, one pair at a time, so memory stays flat whatever the upload.
public struct MediaFrameLoader: FrameLoader {
    /// What the two archives may inflate to together: the upload limit, so that a tar.gz may carry no more than
    /// an uncompressed upload could. Inflated bytes are counted as they come out and the scan stops once the
    /// limit is passed; a tar.gz that inflates a hundredfold is refused sooner (`SequenceLimits`).
    public var maxInflatedBytes: Int

    public init(maxInflatedBytes: Int = 4 << 30) {
        self.maxInflatedBytes = maxInflatedBytes
    }

    public func loadFrames(left: URL, right: URL, limits: FrameLimits) throws -> UploadedFrames {
        try loadFrames(left: left, right: right, limits: limits, clientGone: { false })
    }

    /// Each side is scanned entry by entry, asking `clientGone` before each: a client that has left costs
    /// no more decoding.
    public func loadFrames(left: URL, right: URL, limits: FrameLimits,
                           clientGone: @escaping @Sendable () -> Bool) throws -> UploadedFrames {
        var sequenceLimits = SequenceLimits(maxFrames: limits.maxFrames, maxPixelsPerFrame: limits.maxPixelsPerFrame,
                                            maxArchiveBytes: maxInflatedBytes)
        do {
            let leftSide = try FrameCatalog.scan(left, limits: sequenceLimits, shouldStop: clientGone)
            sequenceLimits.maxArchiveBytes = max(0, maxInflatedBytes - leftSide.archiveBytes)
            let rightSide = try FrameCatalog.scan(right, limits: sequenceLimits, shouldStop: clientGone)
            guard leftSide.count == rightSide.count else {
                throw MediaError.frameCountMismatch(left: leftSide.count, right: rightSide.count)
            }
            // Every frame of a side has one size (the scan checks), so comparing the first pair covers all.
            guard leftSide.width == rightSide.width && leftSide.height == rightSide.height else {
                throw MediaError.frameSizeMismatch(frame: leftSide.fileNames[0], leftWidth: leftSide.width,
                                                   leftHeight: leftSide.height, rightWidth: rightSide.width,
                                                   rightHeight: rightSide.height)
            }
            return try ArchiveFrames(left: leftSide, right: rightSide)
        } catch let error as MediaError {
            throw Self.apiError(error)
        }
    }

    /// Both sides' frames, read on demand from the uploaded archives.
    final class ArchiveFrames: UploadedFrames {
        private let names: [String]
        private let left: FrameContents
        private let right: FrameContents

        init(left: FrameCatalog, right: FrameCatalog) throws {
            names = left.names
            self.left = try left.openContents()
            self.right = try right.openContents()
        }

        var count: Int { names.count }

        func frame(at index: Int) throws -> InputFrame {
            do {
                return InputFrame(index: index, name: names[index], left: try left.data(at: index),
                                  right: try right.data(at: index))
            } catch let error as MediaError {
                throw MediaFrameLoader.apiError(error)
            }
        }
    }

    /// The status and code a client gets for each media error.
    static func apiError(_ error: MediaError) -> APIError {
        let message = error.description
        switch error.underlying {
        case .tooManyFrames: return APIError(.payloadTooLarge, "too_many_frames", message)
        case .imageTooLarge: return APIError(.payloadTooLarge, "frame_too_large", message)
        case .fileTooLarge: return APIError(.payloadTooLarge, "file_too_large", message)
        case .inflatedTooLarge: return APIError(.payloadTooLarge, "inflated_too_large", message)
        case .compressionRatioTooHigh: return APIError(.payloadTooLarge, "compression_ratio_too_high", message)
        case .frameCountMismatch: return .unprocessable("frame_count_mismatch", message)
        case .frameSizeMismatch, .inconsistentFrameSize: return .unprocessable("frame_size_mismatch", message)
        case .noFrames: return .unprocessable("missing_frames", message)
        case .notPNG, .pngDecode: return .unprocessable("invalid_png", message)
        case .notJPEG, .jpegDecode: return .unprocessable("invalid_jpeg", message)
        case .badTar, .unsafeTarPath, .badGzip: return .unprocessable("invalid_tar", message)
        case .duplicateFrame: return .unprocessable("duplicate_frame", message)
        case .unreadable: return APIError(.internalError, "upload_storage", message)
        case .stopped: return .clientGone
        default: return .unprocessable("invalid_frames", message)
        }
    }
}
