// A stereo clip from whatever the user has: two videos, one packed video, or two folders / tars of frames.
import Foundation
import Media
import VideoPlan

/// Where a clip's two views come from.
public enum StereoInput: Sendable {
    /// A left and a right source, each a video file, a folder of PNG frames or a tar(.gz) of them.
    case sides(left: URL, right: URL)
    /// One video file holding both views.
    case packed(URL, StereoLayout)
}

extension StereoInput {
    /// Whether a video file is among the sources (its frame rate then sets the MP4s').
    public var includesVideo: Bool {
        get throws {
            switch self {
            case .packed: return true
            case let .sides(left, right):
                return try !StereoClip.isFrameCollection(left) || !StereoClip.isFrameCollection(right)
            }
        }
    }
}

/// The selected frames of a stereo clip, decoded, with the names the results take.
public struct StereoClip: Sendable {
    /// One name per frame: a frame file's name without extension, or a video frame's source index (`0007`).
    public let names: [String]
    public let left: [RGBImage]
    public let right: [RGBImage]
    /// The source's frame rate when it is a video (before frame selection), nil for frame folders and tars.
    public let sourceFrameRate: FrameRate?
    /// Skipped entries and other notes for the user, one line each.
    public let warnings: [String]

    public var count: Int { names.count }
    public var width: Int { left.first?.width ?? 0 }
    public var height: Int { left.first?.height ?? 0 }

    /// Checks the sources agree (frame counts, sizes, frame rates) from their headers, then decodes only the
    /// selected frames. Videos are probed before a single frame is decoded, so a mismatch costs no decoding.
    public static func load(_ input: StereoInput, selection: FrameSelection = .all,
                            limits: SequenceLimits = .init()) throws -> StereoClip {
        if let problem = selection.problem(for: .commandLine) { throw MediaError.invalidArgument(problem) }
        switch input {
        case let .packed(url, layout):
            let info = try VideoProbe.probe(url.path, maxPixels: limits.maxPixelsPerFrame)
            _ = try layout.viewSize(width: info.width, height: info.height, source: url.path)
            let indices = try selected(selection, total: info.frameCount, source: url.path, limits: limits)
            var names: [String] = [], left: [RGBImage] = [], right: [RGBImage] = []
            try decodeSelected(info, indices: indices) { index, frame in
                let views = layout.split(frame)
                names.append(FrameSelection.frameName(index))
                left.append(views.left)
                right.append(views.right)
            }
            return StereoClip(names: names, left: left, right: right, sourceFrameRate: info.frameRate, warnings: [])

        case let .sides(leftURL, rightURL):
            let leftSide = try Side.open(leftURL, limits: limits)
            let rightSide = try Side.open(rightURL, limits: limits)
            guard leftSide.frameCount == rightSide.frameCount else {
                throw MediaError.frameCountMismatch(left: leftSide.frameCount, right: rightSide.frameCount)
            }
            guard leftSide.size == rightSide.size else {
                throw VideoError.mismatch("left frames are \(leftSide.size.width)x\(leftSide.size.height), right frames are \(rightSide.size.width)x\(rightSide.size.height)")
            }
            if let l = leftSide.frameRate, let r = rightSide.frameRate, l != r {
                throw VideoError.mismatch("left runs at \(l) frames per second, right at \(r)")
            }
            let indices = try selected(selection, total: leftSide.frameCount, source: leftURL.path, limits: limits)
            let (leftNames, leftImages) = try leftSide.frames(indices)
            let (rightNames, rightImages) = try rightSide.frames(indices)
            var warnings = leftSide.warnings + rightSide.warnings
            if let i = leftNames.indices.first(where: { leftNames[$0] != rightNames[$0] }), leftSide.isFrames, rightSide.isFrames {
                warnings.append("frames are paired by order, but names differ: left \(leftNames[i]) is paired with right \(rightNames[i])")
            }
            return StereoClip(names: leftNames, left: leftImages, right: rightImages,
                              sourceFrameRate: leftSide.frameRate ?? rightSide.frameRate, warnings: warnings)
        }
    }

    /// The kept source indices, or an error when the selection keeps nothing or too much.
    static func selected(_ selection: FrameSelection, total: Int, source: String, limits: SequenceLimits) throws -> [Int] {
        let indices = selection.indices(of: total)
        guard !indices.isEmpty else {
            throw MediaError.invalidArgument("--start-frame \(selection.start) is past the last frame (\(source) has \(total))")
        }
        guard indices.count <= limits.maxFrames else {
            throw VideoError.tooManyFrames(path: source, count: indices.count, limit: limits.maxFrames)
        }
        return indices
    }

    /// Decodes up to the last selected frame and passes on the selected ones only.
    static func decodeSelected(_ info: VideoInfo, indices: [Int], _ keep: (Int, RGBImage) throws -> Void) throws {
        let wanted = Set(indices)
        try VideoDecoder.decode(info, frames: (indices.last ?? -1) + 1) { index, frame in
            if wanted.contains(index) { try keep(index, frame) }
        }
    }

    /// One side: a video, or frames already decoded from a folder or tar.
    enum Side {
        case video(VideoInfo)
        case frames(FrameSet)

        static func open(_ url: URL, limits: SequenceLimits) throws -> Side {
            if try isFrameCollection(url) { return .frames(try FrameSet.load(url, limits: limits)) }
            return .video(try VideoProbe.probe(url.path, maxPixels: limits.maxPixelsPerFrame))
        }

        var isFrames: Bool { if case .frames = self { return true } else { return false } }

        var frameCount: Int {
            switch self {
            case let .video(info): return info.frameCount
            case let .frames(set): return set.images.count
            }
        }

        var size: (width: Int, height: Int) {
            switch self {
            case let .video(info): return (info.width, info.height)
            case let .frames(set): return (set.images[0].width, set.images[0].height)  // a FrameSet is never empty
            }
        }

        var frameRate: FrameRate? {
            if case let .video(info) = self { return info.frameRate }
            return nil
        }

        var warnings: [String] {
            if case let .frames(set) = self { return set.warnings }
            return []
        }

        func frames(_ indices: [Int]) throws -> (names: [String], images: [RGBImage]) {
            switch self {
            case let .frames(set):
                return (indices.map { set.names[$0] }, indices.map { set.images[$0] })
            case let .video(info):
                var names: [String] = [], images: [RGBImage] = []
                try StereoClip.decodeSelected(info, indices: indices) { index, frame in
                    names.append(FrameSelection.frameName(index))
                    images.append(frame)
                }
                return (names, images)
            }
        }
    }

    /// Whether `url` is a folder or a tar(.gz) of frames rather than a video: folders, the tar extensions,
    /// and files that start like a gzip stream or carry the ustar magic at byte 257.
    public static func isFrameCollection(_ url: URL) throws -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw MediaError.unreadable(path: url.path, reason: "no such file or directory")
        }
        if isDirectory.boolValue { return true }
        let name = url.lastPathComponent.lowercased()
        if name.hasSuffix(".tar") || name.hasSuffix(".tar.gz") || name.hasSuffix(".tgz") { return true }
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw MediaError.unreadable(path: url.path, reason: "cannot open it")
        }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 262)) ?? Data()
        if head.count >= 2, head[head.startIndex] == 0x1f, head[head.startIndex + 1] == 0x8b { return true }
        return head.count >= 262 && head[(head.startIndex + 257)..<(head.startIndex + 262)] == Data("ustar".utf8)
    }
}
