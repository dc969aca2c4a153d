// Ground-truth disparity as a stream of frames: a .npy array, or a folder or tar of per-frame files.
import Foundation
import Media

/// Ground truth handed out one frame at a time, in time order; non-finite values mean no ground truth.
/// How many frames there are is known before the first is read, so a count mismatch costs nothing.
public final class GroundTruthFrames {
    /// What was opened, for messages.
    public let source: String
    public let count: Int
    /// Files of a folder or archive that are not frames, one line each.
    public let warnings: [String]
    /// The per-frame format, known once the first frame is read (nil for a .npy array, or before that).
    public private(set) var format: DisparityFileFormat?

    private enum Storage {
        case array(NPYFrames)
        case files(FrameFiles)
    }

    private let storage: Storage
    private var position = 0

    /// Opens `url`: a .npy [T, H, W] (recognised by its magic bytes), or a folder or tar (optionally gzipped) of
    /// PFM / KITTI PNG / Sintel PNG frames paired in name order, at any depth of the archive.
    public init(url: URL) throws {
        source = url.lastPathComponent
        let kind = try InputKind.of(url)
        switch kind {
        case .directory:
            let files = try FrameFiles(directory: url)
            storage = .files(files)
            count = files.entries.count
            warnings = files.warnings
        case .npy:
            let array = try NPYFrames(bytes: FileBytes(url: url), name: url.lastPathComponent)
            storage = .array(array)
            count = array.frames
            warnings = []
        case .other:
            let head = try InputKind.head(of: url)
            if PFM.looksLikePFM(head) || head.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
                throw EvaluationError.notDisparity(
                    file: url.lastPathComponent,
                    reason: "one frame; the ground truth is a .npy video or a folder or tar of frames")
            }
            let files = try FrameFiles(archive: url)
            storage = .files(files)
            count = files.entries.count
            warnings = files.warnings
        }
    }

    /// The frame's name (its file name, or its index in a .npy) and its values, or nil after the last frame.
    public func next() throws -> (name: String, frame: DisparityFrame)? {
        guard position < count else { return nil }
        defer { position += 1 }
        switch storage {
        case let .array(array):
            let values = try array.nextFloats()
            return ("\(position)", DisparityFrame(width: array.width, height: array.height, values: values))
        case let .files(files):
            let entry = files.entries[position]
            let (format, frame) = try DisparityFile.decode(try files.contents(of: entry), file: "\(source)/\(entry.name)")
            if let first = self.format, first != format {
                throw EvaluationError.mixedFormats(source: source, frame: entry.name, format: format.rawValue,
                                                   firstFrame: files.entries[0].name, firstFormat: first.rawValue)
            }
            self.format = format
            return (entry.name, frame)
        }
    }
}

/// What a path on the command line is.
enum InputKind {
    case directory, npy, other

    static func of(_ url: URL) throws -> InputKind {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw EvaluationError.unreadable(path: url.path, reason: "no such file or directory")
        }
        if isDirectory.boolValue { return .directory }
        return try head(of: url).starts(with: NPYFrames.magic) ? .npy : .other
    }

    /// The first bytes of a file, to recognise it.
    static func head(of url: URL) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw EvaluationError.unreadable(path: url.path, reason: "cannot open it")
        }
        defer { try? handle.close() }
        do {
            return try handle.read(upToCount: 16) ?? Data()
        } catch {
            throw EvaluationError.unreadable(path: url.path, reason: error.localizedDescription)
        }
    }
}

/// The frame files of a folder or tar archive, in name order, each read only when asked for. An uncompressed
/// archive is read where its frames lie (by offset); a gzipped one cannot be, so its frame files are copied
/// out to a temporary folder during the one pass that lists them (removed with this object).
final class FrameFiles {
    struct Entry {
        /// The file name (`0003.pfm`), and where its bytes are.
        let name: String
        let location: Location
    }

    enum Location {
        case file(URL)
        case archive(offset: Int, size: Int)
    }

    /// A frame file is at most this large: a 100-megapixel PFM and a little.
    static let maxFrameBytes = 400 << 20

    let entries: [Entry]
    let warnings: [String]
    private let source: String
    private let archiveHandle: FileHandle?
    private let temporaryFolder: URL?

    /// The .pfm and .png files of a folder (not recursing; hidden files skipped, other files noted).
    init(directory url: URL) throws {
        source = url.lastPathComponent
        archiveHandle = nil
        temporaryFolder = nil
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: url.path)
        } catch {
            throw EvaluationError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        var found: [Entry] = []
        var notes: [String] = []
        for name in names.sorted() {
            let file = url.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory)
            if let reason = Self.reasonToSkip(name, isDirectory: isDirectory.boolValue) {
                if !name.hasPrefix(".") { notes.append("\(source)/\(name): skipped, \(reason)") }
                continue
            }
            found.append(Entry(name: name, location: .file(file)))
        }
        entries = try Self.ordered(found, source: source)
        warnings = notes
    }

    /// The .pfm and .png files of a tar or tar.gz, at any depth (hidden folders and files skipped).
    init(archive url: URL) throws {
        source = url.lastPathComponent
        let reader: TarReader
        do {
            reader = try TarReader(url: url)
        } catch let error as MediaError {
            throw EvaluationError.notDisparity(file: source, reason: "neither a .npy nor a tar of frames (\(error.description))")
        }
        var found: [Entry] = []
        var notes: [String] = []
        var folder: URL?
        do {
            while let entry = try reader.next() {
                let components = entry.path.split(separator: "/")
                if entry.kind != .file || components.dropLast().contains(where: { $0.hasPrefix(".") }) { continue }
                if let reason = Self.reasonToSkip(entry.fileName, isDirectory: false) {
                    if !entry.fileName.hasPrefix(".") { notes.append("\(entry.path) in \(source): skipped, \(reason)") }
                    continue
                }
                guard entry.size <= Self.maxFrameBytes else {
                    throw EvaluationError.notDisparity(file: "\(entry.path) in \(source)",
                                                       reason: "\(entry.size) bytes is too large for one frame")
                }
                if reader.isCompressed {
                    if folder == nil {
                        let made = FileManager.default.temporaryDirectory
                            .appendingPathComponent("dynstereo-evaluate-\(UUID().uuidString)")
                        try FileManager.default.createDirectory(at: made, withIntermediateDirectories: true)
                        folder = made
                    }
                    let copy = folder!.appendingPathComponent("\(found.count)")
                    try reader.readContents(maxBytes: Self.maxFrameBytes).write(to: copy)
                    found.append(Entry(name: entry.fileName, location: .file(copy)))
                } else {
                    found.append(Entry(name: entry.fileName, location: .archive(offset: reader.contentOffset, size: entry.size)))
                }
            }
        } catch {
            if let folder { try? FileManager.default.removeItem(at: folder) }
            if let error = error as? MediaError {
                throw EvaluationError.notDisparity(file: source, reason: "neither a .npy nor a readable tar of frames (\(error.description))")
            }
            throw error
        }
        temporaryFolder = folder
        warnings = notes
        do {
            entries = try Self.ordered(found, source: source)
            archiveHandle = reader.isCompressed ? nil : try FileHandle(forReadingFrom: url)
        } catch {
            if let folder { try? FileManager.default.removeItem(at: folder) }
            throw error
        }
    }

    deinit {
        try? archiveHandle?.close()
        if let temporaryFolder { try? FileManager.default.removeItem(at: temporaryFolder) }
    }

    /// Why a file is not a frame, or nil when it is one.
    static func reasonToSkip(_ name: String, isDirectory: Bool) -> String? {
        if name.hasPrefix(".") { return "hidden" }
        if isDirectory { return "a folder (folders are not searched)" }
        let lowered = name.lowercased()
        if !lowered.hasSuffix(".pfm") && !lowered.hasSuffix(".png") { return "not a .pfm or .png file" }
        return nil
    }

    /// Frames in name order (digit runs by value, as the stereo frames are paired); refuses none and duplicates.
    static func ordered(_ entries: [Entry], source: String) throws -> [Entry] {
        guard !entries.isEmpty else { throw EvaluationError.noFrames(source: source) }
        let sorted = entries.sorted { FrameSet.fileNameOrder($0.name, $1.name) }
        var seen: Set<String> = []
        for entry in sorted {
            let stem = entry.name.split(separator: ".").dropLast().joined(separator: ".")
            guard seen.insert(stem).inserted else { throw EvaluationError.duplicateFrame(source: source, name: stem) }
        }
        return sorted
    }

    /// The bytes of one frame file.
    func contents(of entry: Entry) throws -> Data {
        switch entry.location {
        case let .file(url):
            do {
                return try Data(contentsOf: url)
            } catch {
                throw EvaluationError.unreadable(path: url.path, reason: error.localizedDescription)
            }
        case let .archive(offset, size):
            let handle = archiveHandle!  // set for every uncompressed archive, the only source of these entries
            let data: Data
            do {
                try handle.seek(toOffset: UInt64(offset))
                data = try handle.read(upToCount: size) ?? Data()
            } catch {
                throw EvaluationError.unreadable(path: source, reason: error.localizedDescription)
            }
            guard data.count == size else {
                throw EvaluationError.unreadable(path: source, reason: "the archive changed while it was read (\(entry.name) is cut short)")
            }
            return data
        }
    }
}
