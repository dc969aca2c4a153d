// One side of an uploaded stereo video checked without being kept: each frame is decoded once and dropped,
// and its bytes are read back later, one frame at a time, from where they lie in the archive.
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
    /// Byte range of each frame's PNG in the uncompressed tar stream, in `fileNames` order.
    let locations: [Range<Int>]
    let isCompressed: Bool

    public var count: Int { fileNames.count }

    /// Decodes and checks every frame of a tar or tar.gz archive. Folders are refused: uploads are archives.
    public static func scan(_ url: URL, limits: SequenceLimits = .init()) throws -> FrameCatalog {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw MediaError.unreadable(path: url.path, reason: "no such file or directory")
        }
        guard !isDirectory.boolValue else {
            throw MediaError.invalidArgument("\(url.path) is a folder; a frame catalog reads tar archives")
        }
        let reader = try TarReader(url: url)
        var collector = FrameSet.Collector(source: url.lastPathComponent, limits: limits, keepImages: false)
        try collector.readArchive(reader)
        let (frames, names) = try collector.checked()
        return FrameCatalog(source: collector.source, url: url, fileNames: frames.map(\.fileName), names: names,
                            width: frames[0].width, height: frames[0].height, warnings: collector.warnings,
                            locations: frames.map { $0.location! },  // set for every archive entry
                            isCompressed: reader.isCompressed)
    }

    /// A reader of the frames' PNG bytes. A compressed archive is first inflated to a hidden file beside it
    /// (deleted with the reader), so frames can be fetched in any order without re-inflating.
    public func openContents() throws -> FrameContents {
        try FrameContents(catalog: self)
    }
}

/// Reads one frame's PNG bytes at a time from a scanned archive, by seeking to where the scan found it;
/// the archive's entry order does not matter and nothing but the requested frame is held.
public final class FrameContents {
    private let catalog: FrameCatalog
    private let handle: FileHandle
    private let path: String
    /// The inflated copy of a compressed archive, removed in `deinit`.
    private let temporaryFile: URL?

    init(catalog: FrameCatalog) throws {
        self.catalog = catalog
        var file = catalog.url
        if catalog.isCompressed {
            let inflated = catalog.url.deletingLastPathComponent()
                .appendingPathComponent(".\(catalog.url.lastPathComponent).\(UUID().uuidString).tar")
            try Self.inflate(catalog.url, to: inflated, upTo: catalog.locations.map(\.upperBound).max() ?? 0)
            file = inflated
            temporaryFile = inflated
        } else {
            temporaryFile = nil
        }
        path = file.path
        do {
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            if let temporaryFile { try? FileManager.default.removeItem(at: temporaryFile) }
            throw MediaError.unreadable(path: file.path, reason: error.localizedDescription)
        }
    }

    deinit {
        try? handle.close()
        if let temporaryFile { try? FileManager.default.removeItem(at: temporaryFile) }
    }

    /// The PNG bytes of frame `index` (in the catalog's time order).
    public func data(at index: Int) throws -> Data {
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

    /// Writes the first `limit` inflated bytes of a gzip file to `target`, 64 KiB at a time.
    private static func inflate(_ url: URL, to target: URL, upTo limit: Int) throws {
        let source = try GzipByteSource(upstream: FileByteSource(url: url), archive: url.lastPathComponent)
        guard FileManager.default.createFile(atPath: target.path, contents: nil) else {
            throw MediaError.unreadable(path: target.path, reason: "cannot create the inflated copy")
        }
        do {
            let output = try FileHandle(forWritingTo: target)
            defer { try? output.close() }
            var written = 0
            while written < limit {
                let chunk = try source.read(upTo: min(1 << 16, limit - written))
                if chunk.isEmpty { break }
                try output.write(contentsOf: chunk)
                written += chunk.count
            }
        } catch let error as MediaError {
            try? FileManager.default.removeItem(at: target)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: target)
            throw MediaError.unreadable(path: target.path, reason: error.localizedDescription)
        }
    }
}
