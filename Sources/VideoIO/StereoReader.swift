// A stereo clip read a frame at a time: what `dynstereo infer` runs on, so that its memory holds one window of
// frames however long the video.
import Foundation
import Media
import VideoPlan

/// A stereo clip checked up front and then read in passes, one frame at a time, in order.
///
/// Opening checks exactly what `StereoClip.load` checks (the sides agree in frame count, size and rate; every
/// PNG of a folder or tar is decoded once, then dropped; videos are probed before a frame is decoded), keeping
/// only names and sizes. Each `pass` decodes the selected frames again as they are asked for: PNGs from where
/// the scan found them, videos through a confined ffmpeg that waits on its pipe between frames.
public final class StereoReader {
    /// One name per selected frame: a frame file's name without extension, or a video frame's source index.
    public let names: [String]
    public let width: Int
    public let height: Int
    /// The source's frame rate when it is a video (before frame selection), nil for frame folders and tars.
    public let sourceFrameRate: FrameRate?
    /// Skipped entries and other notes for the user, one line each.
    public let warnings: [String]
    /// The selected source indices, in order.
    let indices: [Int]
    private let sides: Sides

    public var count: Int { names.count }

    fileprivate enum Side {
        case video(VideoInfo)
        case frames(FrameCatalog)
    }

    fileprivate enum Sides {
        case separate(left: Side, right: Side)
        case packed(VideoInfo, StereoLayout)
    }

    /// Opens and checks `input`. A tar.gz's frames are copied into a hidden file in `scratch` (removed when the
    /// reader goes), so the archive is inflated once and its frames read back in any order.
    public init(_ input: StereoInput, selection: FrameSelection = .all, limits: SequenceLimits = .init(), scratch: URL) throws {
        if let problem = selection.problem(for: .commandLine) { throw MediaError.invalidArgument(problem) }
        switch input {
        case let .packed(url, layout):
            let info = try VideoProbe.probe(url.path, maxPixels: limits.maxPixelsPerFrame)
            (width, height) = try layout.viewSize(width: info.width, height: info.height, source: url.path)
            let selected = try StereoClip.selected(selection, total: info.frameCount, source: url.path, limits: limits)
            indices = selected
            names = selected.map(FrameSelection.frameName)
            sourceFrameRate = info.frameRate
            warnings = []
            sides = .packed(info, layout)

        case let .sides(leftURL, rightURL):
            func open(_ url: URL) throws -> Side {
                guard try StereoClip.isFrameCollection(url) else {
                    return .video(try VideoProbe.probe(url.path, maxPixels: limits.maxPixelsPerFrame))
                }
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
                if isDirectory.boolValue { return .frames(try FrameCatalog.scan(folder: url, limits: limits)) }
                return .frames(try FrameCatalog.scan(url, limits: limits, storeDirectory: scratch))
            }
            func facts(_ side: Side) -> (count: Int, width: Int, height: Int, rate: FrameRate?) {
                switch side {
                case let .video(info): return (info.frameCount, info.width, info.height, info.frameRate)
                case let .frames(catalog): return (catalog.count, catalog.width, catalog.height, nil)
                }
            }
            let left = try open(leftURL), right = try open(rightURL)
            let (l, r) = (facts(left), facts(right))
            guard l.count == r.count else { throw MediaError.frameCountMismatch(left: l.count, right: r.count) }
            guard l.width == r.width, l.height == r.height else {
                throw VideoError.mismatch("left frames are \(l.width)x\(l.height), right frames are \(r.width)x\(r.height)")
            }
            if let lr = l.rate, let rr = r.rate, lr != rr {
                throw VideoError.mismatch("left runs at \(lr) frames per second, right at \(rr)")
            }
            let selected = try StereoClip.selected(selection, total: l.count, source: leftURL.path, limits: limits)
            indices = selected
            (width, height) = (l.width, l.height)
            switch left {
            case .video: names = selected.map(FrameSelection.frameName)
            case let .frames(catalog): names = selected.map { catalog.names[$0] }
            }
            var notes: [String] = []
            for case let .frames(catalog) in [left, right] { notes += catalog.warnings }
            if case let .frames(lc) = left, case let .frames(rc) = right,
               let i = selected.first(where: { lc.names[$0] != rc.names[$0] }) {
                notes.append("frames are paired by order, but names differ: left \(lc.names[i]) is paired with right \(rc.names[i])")
            }
            warnings = notes
            sourceFrameRate = l.rate ?? r.rate
            sides = .separate(left: left, right: right)
        }
    }

    /// A new pass over the selected frames from the first: both views, or the left view alone (`rightToo`
    /// false: the right side is not decoded at all).
    public func pass(rightToo: Bool = true) throws -> StereoPass {
        switch sides {
        case let .packed(info, layout):
            return StereoPass(reader: self, left: try FrameSource(video: info, indices: indices), right: nil, layout: layout,
                              rightToo: rightToo)
        case let .separate(left, right):
            let rightFrames = try rightToo ? FrameSource(right, indices: indices) : nil
            return StereoPass(reader: self, left: try FrameSource(left, indices: indices), right: rightFrames, layout: nil,
                              rightToo: rightToo)
        }
    }

    /// One side's selected frames, decoded in order.
    fileprivate final class FrameSource {
        private enum Kind {
            case video(VideoFrameStream, wanted: Set<Int>)
            case frames(FrameCatalog, FrameContents)
        }
        private let kind: Kind
        private let indices: [Int]
        private var position = 0

        convenience init(_ side: Side, indices: [Int]) throws {
            switch side {
            case let .video(info): try self.init(video: info, indices: indices)
            case let .frames(catalog): try self.init(catalog: catalog, indices: indices)
            }
        }

        init(video: VideoInfo, indices: [Int]) throws {
            // Decoded up to the last selected frame; the others are read and dropped.
            kind = .video(try VideoFrameStream(video, frames: indices.last! + 1), wanted: Set(indices))
            self.indices = indices
        }

        init(catalog: FrameCatalog, indices: [Int]) throws {
            kind = .frames(catalog, try catalog.openContents())
            self.indices = indices
        }

        /// The next selected frame, or nil after the last.
        func next() throws -> RGBImage? {
            guard position < indices.count else {
                if case let .video(stream, _) = kind { _ = try stream.next() }  // checks that ffmpeg ended well
                return nil
            }
            defer { position += 1 }
            switch kind {
            case let .video(stream, wanted):
                while let decoded = try stream.next() {
                    if wanted.contains(decoded.0) { return decoded.1 }
                }
                preconditionFailure("the stream ends with an error before its last frame")
            case let .frames(catalog, contents):
                let index = indices[position]
                do {
                    return try PNG.decodeRGB(contents.data(at: index))
                } catch let error as MediaError {
                    throw MediaError.inFile("\(catalog.fileNames[index]) in \(catalog.source)", error)
                }
            }
        }
    }
}

/// One pass over a `StereoReader`'s selected frames, in order, one frame of each view decoded at a time.
public final class StereoPass {
    private let reader: StereoReader
    private let left: StereoReader.FrameSource
    private let right: StereoReader.FrameSource?
    private let layout: StereoLayout?
    private let rightToo: Bool
    private var position = 0

    fileprivate init(reader: StereoReader, left: StereoReader.FrameSource, right: StereoReader.FrameSource?,
                     layout: StereoLayout?, rightToo: Bool) {
        self.reader = reader
        self.left = left
        self.right = right
        self.layout = layout
        self.rightToo = rightToo
    }

    /// The next frame: its position among the selected frames, its name, its left view, and its right view
    /// (nil in a left-only pass); nil after the last frame.
    public func next() throws -> (position: Int, name: String, left: RGBImage, right: RGBImage?)? {
        guard let first = try left.next() else {
            _ = try right?.next()
            return nil
        }
        defer { position += 1 }
        if let layout {
            let views = layout.split(first)
            return (position, reader.names[position], views.left, rightToo ? views.right : nil)
        }
        guard let right else { return (position, reader.names[position], first, nil) }
        guard let second = try right.next() else { preconditionFailure("both sides have the reader's frame count") }
        return (position, reader.names[position], first, second)
    }
}
