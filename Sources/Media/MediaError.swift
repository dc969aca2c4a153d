// What can go wrong reading images, archives and sequences, each case carrying the file or entry at fault.

/// Errors from the media module. `description` is a one-line message a user can act on; callers that map errors
/// to statuses (the HTTP server's 413/422) switch on the cases, looking through `.inFile` with `underlying`.
public enum MediaError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The bytes do not start with the PNG signature.
    case notPNG
    /// libpng refused the data; the message is libpng's own (e.g. "IHDR: CRC error").
    case pngDecode(String)
    /// The bytes do not start with a JPEG's SOI marker.
    case notJPEG
    /// libjpeg refused the data (or found it corrupt); the message is libjpeg's own.
    case jpegDecode(String)
    /// libpng refused to encode (bad dimensions, out of memory).
    case pngEncode(String)
    /// The header announces more pixels than the caller allows; nothing was allocated.
    case imageTooLarge(width: Int, height: Int, maxPixels: Int)
    /// A path could not be read, listed or opened.
    case unreadable(path: String, reason: String)
    /// A tar archive is malformed or truncated.
    case badTar(archive: String, reason: String)
    /// A tar entry's path is absolute or climbs out with `..`.
    case unsafeTarPath(archive: String, entry: String)
    /// A gzip stream is corrupt or truncated.
    case badGzip(archive: String, reason: String)
    /// A file is larger than the caller allows.
    case fileTooLarge(file: String, size: Int, limit: Int)
    /// A compressed archive inflates to more than the caller allows; reading stopped at the limit.
    case inflatedTooLarge(archive: String, limit: Int)
    /// A compressed archive inflates to over `limit` times the compressed bytes it took (a decompression bomb):
    /// `inflated` bytes had come out of `compressed` when reading stopped.
    case compressionRatioTooHigh(archive: String, inflated: Int, compressed: Int, limit: Int)
    /// A directory or archive holds no PNG frames.
    case noFrames(source: String)
    /// More frames than the caller allows.
    case tooManyFrames(source: String, limit: Int)
    /// Two frames of one side have the same name once the extension is dropped.
    case duplicateFrame(source: String, name: String)
    /// A frame differs in size from the first frame of the same side.
    case inconsistentFrameSize(source: String, frame: String, width: Int, height: Int,
                               firstFrame: String, firstWidth: Int, firstHeight: Int)
    /// Left and right have different numbers of frames.
    case frameCountMismatch(left: Int, right: Int)
    /// A left frame and its right partner differ in size.
    case frameSizeMismatch(frame: String, leftWidth: Int, leftHeight: Int, rightWidth: Int, rightHeight: Int)
    /// The caller asked reading to stop (the client that sent the archive went away).
    case stopped(source: String)
    /// Arguments to an encoder or to `ResultFiles.make` that do not fit together.
    case invalidArgument(String)
    /// An error about a particular file: the frame, the tar entry or the path named first.
    indirect case inFile(String, MediaError)

    /// The error with every `.inFile` wrapper removed.
    public var underlying: MediaError {
        if case let .inFile(_, inner) = self { return inner.underlying }
        return self
    }

    /// One line whatever the file held: names taken from it (zip entries, pickle globals, tar paths) may carry
    /// newlines and other control characters, which are shown escaped (found by fuzz/run).
    public var description: String {
        var line = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}":
                line += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: line.unicodeScalars.append(scalar)
            }
        }
        return line
    }

    private var text: String {
        switch self {
        case .notPNG:
            return "not a PNG file (bad signature)"
        case let .pngDecode(message):
            return "cannot decode PNG: \(message)"
        case .notJPEG:
            return "not a JPEG file (no SOI marker)"
        case let .jpegDecode(message):
            return "cannot decode JPEG: \(message)"
        case let .pngEncode(message):
            return "cannot encode PNG: \(message)"
        case let .imageTooLarge(width, height, maxPixels):
            return "image is \(width)x\(height) = \(width * height) pixels, over the limit of \(maxPixels)"
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)"
        case let .badTar(archive, reason):
            return "bad tar archive \(archive): \(reason)"
        case let .unsafeTarPath(archive, entry):
            return "tar archive \(archive) has an unsafe entry path '\(entry)' (absolute or with '..')"
        case let .badGzip(archive, reason):
            return "bad gzip stream in \(archive): \(reason)"
        case let .fileTooLarge(file, size, limit):
            return "\(file) is \(size) bytes, over the limit of \(limit)"
        case let .inflatedTooLarge(archive, limit):
            return "\(archive) inflates to more than the limit of \(limit) bytes"
        case let .compressionRatioTooHigh(archive, inflated, compressed, limit):
            return "\(archive) inflates to more than \(limit) times its compressed size (\(inflated) bytes from \(compressed)); frames compress far less"
        case let .noFrames(source):
            return "no PNG or JPEG frames in \(source)"
        case let .tooManyFrames(source, limit):
            return "\(source) has more than \(limit) frames"
        case let .duplicateFrame(source, name):
            return "\(source) has two frames named \(name)"
        case let .inconsistentFrameSize(source, frame, width, height, firstFrame, firstWidth, firstHeight):
            return "\(source): frame \(frame) is \(width)x\(height) but \(firstFrame) is \(firstWidth)x\(firstHeight)"
        case let .frameCountMismatch(left, right):
            return "left has \(left) frames, right has \(right)"
        case let .frameSizeMismatch(frame, leftWidth, leftHeight, rightWidth, rightHeight):
            return "frame \(frame): left is \(leftWidth)x\(leftHeight), right is \(rightWidth)x\(rightHeight)"
        case let .stopped(source):
            return "reading \(source) was stopped before its end"
        case let .invalidArgument(message):
            return message
        case let .inFile(file, inner):
            return "\(file): \(inner.description)"
        }
    }
}
