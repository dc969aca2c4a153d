// One side of an uploaded stereo video checked without being kept: each frame is decoded once and dropped,
// and its bytes are read back later, one frame at a time, from where they lie in the archive (or, for a
// tar.gz, from the copy of its frames made while it was inflated for the scan).
import Foundation

/// The frames of one tar / tar.gz archive, checked exactly as `FrameSet.load` checks them (every PNG decoded,
/// sorted by name, one size), but keeping only names, the size and where each frame's bytes lie. Peak memory
/// while scanning is one frame's PNG and pixels, whatever the archive's size.
public struct FrameCatalog: Sendable {
    /// The archive's name, for messages.
    public let source: String
    public let url: URL
    /// Frame file names (`0003.png`) in time order; `names` are the same without the extension.
    public let fileNames: [String]
    public let names: [String]
    public let width: Int
    public let height: Int
    /// Entries that were skipped, one line each.
    public let warnings: [String]
    /// Byte range of each frame's PNG (through its IEND chunk), in `fileNames` order: in the tar itself, or in
    /// `store` for a compressed archive (empty for a folder).
    let locations: [Range<Int>]
    /// Each frame's file, in `fileNames` order, when the frames are a folder's files (nil for an archive).
    let files: [URL]?
    let isCompressed: Bool
    /// A compressed archive's frames, copied out while it was inflated for the scan.
    let store: FrameStore?
    /// Bytes of the uncompressed archive the scan read: what a tar.gz inflated to.
    public let archiveBytes: Int

    public var count: Int { fileNames.count }

    /// Decodes and checks every frame of a tar or tar.gz archive. Folders are refused: uploads are archives.
    /// `shouldStop` is asked before each entry; when it says yes the scan ends with `MediaError.stopped` (the
    /// server passes whether the client that uploaded the archive is still there).
    ///
    /// A compressed archive's frames are copied into a hidden file beside it, or in `storeDirectory` when given
    /// (for an archive in a folder this process may not write to).
    public static func scan(_ url: URL, limits: SequenceLimits = .init(), storeDirectory: URL? = nil,
                            shouldStop: () -> Bool = { false }) throws -> FrameCatalog {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw MediaError.unreadable(path: url.path, reason: "no such file or directory")
        }
        guard !isDirectory.boolValue else {
            throw MediaError.invalidArgument("\(url.path) is a folder; a frame catalog reads tar archives")
        }
        let reader = try TarReader(url: url)
        let store = reader.isCompressed ? try FrameStore(beside: url, in: storeDirectory) : nil
        var collector = FrameSet.Collector(source: url.lastPathComponent, limits: limits, keepImages: false)
        try collector.readArchive(reader, store: store, shouldStop: shouldStop)
        try store?.finishWriting()
        let (frames, names) = try collector.checked()
        return FrameCatalog(source: collector.source, url: url, fileNames: frames.map(\.fileName), names: names,
                            width: frames[0].width, height: frames[0].height, warnings: collector.warnings,
                            locations: frames.map { $0.location! },  // set for every archive entry
                            files: nil, isCompressed: reader.isCompressed, store: store, archiveBytes: reader.bytesRead)
    }

    /// Decodes and checks every PNG of a folder (not recursing) exactly as `FrameSet.load` does, keeping only
    /// names, the size and each frame's file: the frames of `dynstereo infer`, read again one at a time.
    public static func scan(folder url: URL, limits: SequenceLimits = .init()) throws -> FrameCatalog {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MediaError.unreadable(path: url.path, reason: "no such folder")
        }
        var collector = FrameSet.Collector(source: url.lastPathComponent, limits: limits, keepImages: false)
        try collector.readDirectory(url)
        let (frames, names) = try collector.checked()
        return FrameCatalog(source: collector.source, url: url, fileNames: frames.map(\.fileName), names: names,
                            width: frames[0].width, height: frames[0].height, warnings: collector.warnings,
                            locations: [], files: frames.map { $0.file! },  // set for every file of a folder
                            isCompressed: false, store: nil, archiveBytes: 0)
    }

    /// A reader of the frames' PNG bytes, in any order, one at a time.
    public func openContents() throws -> FrameContents {
        try FrameContents(catalog: self)
    }
}

/// A hidden file beside a compressed archive holding its frames' PNGs one after another, written during the
/// scan and deleted with the last catalog or reader that uses it. The archive is inflated once, and what
/// lies on disk is the frames themselves: not the tar, and nothing after a PNG's IEND.
final class FrameStore: @unchecked Sendable {
    let url: URL
    private var handle: FileHandle?
    private var size = 0

    init(beside archive: URL, in directory: URL? = nil) throws {
        url = (directory ?? archive.deletingLastPathComponent())
            .appendingPathComponent(".\(archive.lastPathComponent).\(UUID().uuidString).frames")
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: url.path) else {
            throw MediaError.unreadable(path: url.path, reason: "cannot create the frame store beside the archive")
        }
        self.handle = handle
    }

    /// Appends one frame's bytes and returns where they are.
    func append(_ bytes: Data) throws -> Range<Int> {
        guard let handle else { preconditionFailure("the frame store is closed for writing") }
        do {
            try handle.write(contentsOf: bytes)
        } catch {
            throw MediaError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        defer { size += bytes.count }
        return size..<(size + bytes.count)
    }

    func finishWriting() throws {
        do { try handle?.close() } catch { throw MediaError.unreadable(path: url.path, reason: error.localizedDescription) }
        handle = nil
    }

    deinit {
        try? handle?.close()
        try? FileManager.default.removeItem(at: url)
    }
}

/// Reads one frame's PNG bytes at a time from a scanned archive (or its frame store), by seeking to where the
/// scan found it; the archive's entry order does not matter and nothing but the requested frame is held.
public final class FrameContents {
    private let catalog: FrameCatalog
    private let handle: FileHandle?
    private let path: String

    init(catalog: FrameCatalog) throws {
        self.catalog = catalog
        let file = catalog.store?.url ?? catalog.url
        path = file.path
        if catalog.files != nil {
            handle = nil
            return
        }
        do {
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            throw MediaError.unreadable(path: file.path, reason: error.localizedDescription)
        }
    }

    deinit { try? handle?.close() }

    /// The PNG bytes of frame `index` (in the catalog's time order).
    public func data(at index: Int) throws -> Data {
        if let files = catalog.files {
            precondition(files.indices.contains(index), "frame \(index) of \(catalog.count)")
            do {
                return try Data(contentsOf: files[index])
            } catch {
                throw MediaError.unreadable(path: files[index].path, reason: error.localizedDescription)
            }
        }
        guard let handle else { preconditionFailure("an archive's catalog reads through its handle") }
        precondition(catalog.locations.indices.contains(index), "frame \(index) of \(catalog.count)")
        let location = catalog.locations[index]
        let bytes: Data?
        do {
            try handle.seek(toOffset: UInt64(location.lowerBound))
            bytes = try handle.read(upToCount: location.count)
        } catch {
            throw MediaError.unreadable(path: path, reason: error.localizedDescription)
        }
        let data = bytes ?? Data()
        guard data.count == location.count else {
            throw MediaError.badTar(archive: catalog.source, reason: "changed while it was being read (\(catalog.fileNames[index]) is cut short)")
        }
        return data
    }
}
