// Stereo videos as two folders or tar(.gz) archives of PNG frames, checked for agreement between the sides.
import Foundation

/// Bounds on what a sequence may hold; the HTTP server answers 413/422 when one is exceeded.
public struct SequenceLimits: Equatable, Sendable {
    /// Frames per side.
    public var maxFrames: Int
    /// Width × height of one frame, checked from the PNG header before decoding.
    public var maxPixelsPerFrame: Int
    /// Size of one frame file (compressed), checked before it is read.
    public var maxFileBytes: Int
    /// Size of a whole tar archive once uncompressed, checked at each entry's header and, for a tar.gz, as
    /// it inflates.
    public var maxArchiveBytes: Int
    /// Inflated bytes per compressed byte a tar.gz may reach (judged once 16 MiB have come out). PNG frames
    /// are compressed already, so a tar of them gzips by a few percent; a hundredfold is a decompression bomb.
    public var maxCompressionRatio: Int

    public init(maxFrames: Int = 10_000, maxPixelsPerFrame: Int = PNG.defaultMaxPixels, maxFileBytes: Int = 256 << 20,
                maxArchiveBytes: Int = 64 << 30, maxCompressionRatio: Int = 100) {
        self.maxFrames = maxFrames
        self.maxPixelsPerFrame = maxPixelsPerFrame
        self.maxFileBytes = maxFileBytes
        self.maxArchiveBytes = maxArchiveBytes
        self.maxCompressionRatio = maxCompressionRatio
    }
}

/// The decoded frames of one side (a folder or a tar(.gz) of PNGs), sorted by file name, all of one size.
public struct FrameSet: Sendable {
    /// The folder's or archive's name, for messages.
    public let source: String
    /// Frame file names as found (`0003.png`), sorted; `names` are the same without the extension.
    public let fileNames: [String]
    public let names: [String]
    public let images: [RGBImage]
    /// Entries that were skipped (hidden files, non-PNG files, directories, links), one line each.
    public let warnings: [String]

    /// Loads every PNG of a folder (not recursing) or of a tar / tar.gz archive (at any depth inside it).
    /// Frames are ordered by file name, comparing digit runs by value so `2.png` sorts before `10.png`.
    public static func load(_ url: URL, limits: SequenceLimits = .init()) throws -> FrameSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw MediaError.unreadable(path: url.path, reason: "no such file or directory")
        }
        var collector = Collector(source: url.lastPathComponent, limits: limits)
        if isDirectory.boolValue {
            try collector.readDirectory(url)
        } else {
            try collector.readArchive(TarReader(url: url))
        }
        return try collector.finish()
    }

    /// Loads the PNG frames of a tar / tar.gz archive held in memory.
    public static func load(archive: Data, name: String, limits: SequenceLimits = .init()) throws -> FrameSet {
        var collector = Collector(source: name, limits: limits)
        try collector.readArchive(TarReader(data: archive, name: name))
        return try collector.finish()
    }

    /// Gathers frames as they are decoded, then sorts and checks them. With `keepImages` false only each
    /// frame's size and place in the archive survive its decoding (`FrameCatalog`).
    struct Collector {
        /// A frame as collected: its decoded pixels only when kept.
        struct Frame {
            let fileName: String
            let width: Int
            let height: Int
            let image: RGBImage?
            /// Where its bytes lie in the uncompressed archive (nil for a folder's files).
            let location: Range<Int>?
            /// The folder's file it came from (nil for an archive's entries).
            var file: URL? = nil
        }

        let source: String
        let limits: SequenceLimits
        let keepImages: Bool
        var frames: [Frame] = []
        var warnings: [String] = []

        init(source: String, limits: SequenceLimits, keepImages: Bool = true) {
            self.source = source
            self.limits = limits
            self.keepImages = keepImages
        }

        /// Why a file is not a frame, or nil when it is one.
        func reasonToSkip(fileName: String) -> String? {
            if fileName.hasPrefix("._") { return "macOS AppleDouble file" }
            if fileName.hasPrefix(".") { return "hidden file" }
            if !FrameImage.isFrameFileName(fileName) { return "not a .png, .jpg or .jpeg file" }
            return nil
        }

        /// Decodes one frame. `place` is told the frame's bytes and the length of the PNG in them (the bytes
        /// through IEND; anything after is dropped) and says where the frame is kept.
        mutating func add(fileName: String, display: String, data: () throws -> Data,
                          place: ((Data, Int) throws -> Range<Int>)? = nil) throws {
            guard frames.count < limits.maxFrames else {
                throw MediaError.tooManyFrames(source: source, limit: limits.maxFrames)
            }
            do {
                let bytes = try data()
                let (image, length) = try FrameImage.decodeRGBMeasuringLength(bytes, maxPixels: limits.maxPixelsPerFrame)
                let location = try place?(bytes, length)
                frames.append(Frame(fileName: fileName, width: image.width, height: image.height,
                                    image: keepImages ? image : nil, location: location))
            } catch let error as MediaError {
                // Name the frame unless the error already does (a tar entry's size, a truncated archive).
                switch error {
                case .badTar, .badGzip, .fileTooLarge, .inflatedTooLarge, .compressionRatioTooHigh, .unreadable: throw error
                default: throw MediaError.inFile(display, error)
                }
            }
        }

        mutating func readDirectory(_ url: URL) throws {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: url.path)
            } catch {
                throw MediaError.unreadable(path: url.path, reason: error.localizedDescription)
            }
            for name in names.sorted() {
                let file = url.appendingPathComponent(name)
                let display = "\(source)/\(name)"
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory)
                if isDirectory.boolValue {
                    warnings.append("\(display): skipped, a directory (folders are not searched recursively)")
                    continue
                }
                if let reason = reasonToSkip(fileName: name) {
                    warnings.append("\(display): skipped, \(reason)")
                    continue
                }
                // Symbolic links to frames are followed: datasets are often assembled from links.
                let attributes = try? FileManager.default.attributesOfItem(atPath: file.resolvingSymlinksInPath().path)
                guard attributes?[.type] as? FileAttributeType == .typeRegular else {
                    warnings.append("\(display): skipped, not a regular file")
                    continue
                }
                let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
                guard size <= limits.maxFileBytes else {
                    throw MediaError.fileTooLarge(file: display, size: size, limit: limits.maxFileBytes)
                }
                try add(fileName: name, display: display) {
                    do {
                        return try Data(contentsOf: file)
                    } catch {
                        throw MediaError.unreadable(path: file.path, reason: error.localizedDescription)
                    }
                }
                frames[frames.count - 1].file = file
            }
        }

        /// Reads every frame of an archive. With a `store`, each frame's PNG is copied into it as it is found
        /// (a compressed archive, inflated once); without, a frame is located where it lies in the archive.
        /// `shouldStop` is asked before each entry.
        mutating func readArchive(_ reader: TarReader, store: FrameStore? = nil, shouldStop: () -> Bool = { false }) throws {
            reader.maxArchiveBytes = limits.maxArchiveBytes
            reader.maxCompressionRatio = limits.maxCompressionRatio
            while let entry = try reader.next() {
                if shouldStop() { throw MediaError.stopped(source: reader.archiveName) }
                let display = "\(entry.path) in \(reader.archiveName)"
                switch entry.kind {
                case .file:
                    break
                case .directory:
                    if entry.path != "." { warnings.append("\(display): skipped, a directory entry") }
                    continue
                case .symbolicLink, .hardLink:
                    warnings.append("\(display): skipped, a link")
                    continue
                case let .other(flag):
                    warnings.append("\(display): skipped, entry type '\(Character(Unicode.Scalar(flag)))'")
                    continue
                }
                let components = entry.path.split(separator: "/")
                if components.dropLast().contains(where: { $0.hasPrefix(".") || $0 == "__MACOSX" }) {
                    warnings.append("\(display): skipped, inside a hidden or __MACOSX folder")
                    continue
                }
                if let reason = reasonToSkip(fileName: entry.fileName) {
                    warnings.append("\(display): skipped, \(reason)")
                    continue
                }
                let maxBytes = limits.maxFileBytes
                let offset = reader.contentOffset
                try add(fileName: entry.fileName, display: display, data: { try reader.readContents(maxBytes: maxBytes) },
                        place: { bytes, length in
                            if let store { return try store.append(bytes.prefix(length)) }
                            return offset..<(offset + length)
                        })
            }
        }

        func finish() throws -> FrameSet {
            let (sorted, names) = try checked()
            return FrameSet(source: source, fileNames: sorted.map(\.fileName), names: names,
                            images: sorted.map { $0.image! }, warnings: warnings)
        }

        /// The frames in time order with their names, after the checks every side must pass.
        func checked() throws -> (frames: [Frame], names: [String]) {
            guard !frames.isEmpty else { throw MediaError.noFrames(source: source) }
            let sorted = frames.sorted { FrameSet.fileNameOrder($0.fileName, $1.fileName) }
            var seen: Set<String> = []
            let names = sorted.map { FrameSet.stem($0.fileName) }
            for name in names where !seen.insert(name).inserted {
                throw MediaError.duplicateFrame(source: source, name: name)
            }
            let reference = sorted[0]
            for frame in sorted.dropFirst() where frame.width != reference.width || frame.height != reference.height {
                throw MediaError.inconsistentFrameSize(
                    source: source, frame: frame.fileName, width: frame.width, height: frame.height,
                    firstFrame: reference.fileName, firstWidth: reference.width, firstHeight: reference.height)
            }
            return (sorted, names)
        }
    }

    /// The file name without its last extension.
    static func stem(_ fileName: String) -> String {
        guard let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex else { return fileName }
        return String(fileName[..<dot])
    }

    /// File-name order with digit runs compared by value (`frame2` < `frame10`); ties fall back to plain order.
    /// Public so that other per-frame inputs (ground-truth disparity files) pair frames the same way.
    public static func fileNameOrder(_ a: String, _ b: String) -> Bool {
        var i = a.unicodeScalars.makeIterator(), j = b.unicodeScalars.makeIterator()
        var x = i.next(), y = j.next()
        func isDigit(_ s: Unicode.Scalar?) -> Bool { s.map { ("0"..."9").contains($0) } ?? false }
        while let p = x, let q = y {
            if isDigit(p) && isDigit(q) {
                var left = "", right = ""
                while let s = x, isDigit(s) { left.unicodeScalars.append(s); x = i.next() }
                while let s = y, isDigit(s) { right.unicodeScalars.append(s); y = j.next() }
                let trimmedLeft = left.drop(while: { $0 == "0" }), trimmedRight = right.drop(while: { $0 == "0" })
                if trimmedLeft.count != trimmedRight.count { return trimmedLeft.count < trimmedRight.count }
                if trimmedLeft != trimmedRight { return trimmedLeft < trimmedRight }
                continue
            }
            if p != q { return p.value < q.value }
            x = i.next()
            y = j.next()
        }
        if x == nil && y == nil { return a < b }
        return x == nil
    }
}

/// A rectified stereo video: left and right frames in time order, all of one size.
public struct StereoSequence: Sendable {
    /// Frame names (the left files' names without extension), in time order.
    public let names: [String]
    public let left: [RGBImage]
    public let right: [RGBImage]
    /// Skipped entries and other things the user may want to know, one line each.
    public var warnings: [String]

    public var count: Int { names.count }
    public var width: Int { left.first?.width ?? 0 }
    public var height: Int { left.first?.height ?? 0 }

    /// Pairs two sides, checking that they agree in frame count and in each frame's size.
    public init(left: FrameSet, right: FrameSet) throws {
        guard left.images.count == right.images.count else {
            throw MediaError.frameCountMismatch(left: left.images.count, right: right.images.count)
        }
        for (index, (l, r)) in zip(left.images, right.images).enumerated()
        where l.width != r.width || l.height != r.height {
            throw MediaError.frameSizeMismatch(frame: left.fileNames[index], leftWidth: l.width, leftHeight: l.height,
                                               rightWidth: r.width, rightHeight: r.height)
        }
        var warnings = left.warnings + right.warnings
        if let index = left.names.indices.first(where: { left.names[$0] != right.names[$0] }) {
            warnings.append("frames are paired by order, but names differ: left \(left.fileNames[index]) is paired with right \(right.fileNames[index])")
        }
        names = left.names
        self.left = left.images
        self.right = right.images
        self.warnings = warnings
    }

    /// Loads both sides, each a folder or a tar / tar.gz of PNG frames, and pairs them.
    public static func load(left: URL, right: URL, limits: SequenceLimits = .init()) throws -> StereoSequence {
        try StereoSequence(left: FrameSet.load(left, limits: limits), right: FrameSet.load(right, limits: limits))
    }
}
