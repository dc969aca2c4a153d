import Foundation
import Media
import TensorKernels
import TestSupport
import VideoPlan
import XCTest
@testable import VideoIO

/// PLY clouds, MP4 videos and the `--outputs` selection, read back with independent parsers and ffprobe.
final class OutputTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("outputs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// A binary little-endian PLY parsed by the book: the header's lines, then 15-byte vertices.
    struct ParsedPLY {
        var headerLines: [String]
        var points: [(x: Float, y: Float, z: Float)]
        var colors: [(UInt8, UInt8, UInt8)]
    }

    static func parsePLY(_ data: Data) throws -> ParsedPLY {
        let marker = Data("end_header\n".utf8)
        let end = try XCTUnwrap(data.range(of: marker), "no end_header")
        let header = String(decoding: data[..<end.upperBound], as: UTF8.self)
        let lines = header.split(separator: "\n").map(String.init)
        let vertexLine = try XCTUnwrap(lines.first { $0.hasPrefix("element vertex ") })
        let count = try XCTUnwrap(Int(vertexLine.dropFirst("element vertex ".count)))
        let body = [UInt8](data[end.upperBound...])
        XCTAssertEqual(body.count, count * 15, "vertex data for \(count) vertices")
        var points: [(Float, Float, Float)] = [], colors: [(UInt8, UInt8, UInt8)] = []
        func float(_ offset: Int) -> Float {
            Float(bitPattern: UInt32(body[offset]) | UInt32(body[offset + 1]) << 8 | UInt32(body[offset + 2]) << 16 | UInt32(body[offset + 3]) << 24)
        }
        for v in 0..<min(count, body.count / 15) {
            let base = v * 15
            points.append((float(base), float(base + 4), float(base + 8)))
            colors.append((body[base + 12], body[base + 13], body[base + 14]))
        }
        return ParsedPLY(headerLines: lines, points: points, colors: colors)
    }

    func testAPlaneSeenInDisparityComesBackAsPointsOnThatPlane() throws {
        // The plane n·X = c, n = (0.1, -0.2, 1), c = 2 m. A pixel's ray is r = ((u-cx)/f, (v-cy)/f, 1), the point
        // on the plane is X = r·c/(n·r), so z = c/(n·r) and the disparity is f·B/z = f·B·(n·r)/c.
        let (width, height, focal, baseline) = (40, 30, 50.0, 0.12)
        let camera = StereoCamera(focalPx: focal, baselineM: baseline, cxPx: 19.0, cyPx: 14.5, maxDepthM: 3.0)
        let n = (0.1, -0.2, 1.0), c = 2.0
        var disparity = [Float](repeating: 0, count: width * height)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for v in 0..<height {
            for u in 0..<width {
                let r = ((Double(u) - 19.0) / focal, (Double(v) - 14.5) / focal, 1.0)
                disparity[v * width + u] = Float(focal * baseline * (n.0 * r.0 + n.1 * r.1 + n.2 * r.2) / c)
                pixels[(v * width + u) * 3] = UInt8(u)
                pixels[(v * width + u) * 3 + 1] = UInt8(v)
                pixels[(v * width + u) * 3 + 2] = 7
            }
        }
        // Holes: no disparity, a negative one, and one so small that the point lies beyond --max-depth-m.
        disparity[0] = 0
        disparity[1] = -1
        disparity[2] = Float(focal * baseline / 10)
        let left = RGBImage(width: width, height: height, pixels: pixels)
        let ply = try Self.parsePLY(PointCloud.ply(disparity: disparity[...], left: left, camera: camera))

        XCTAssertEqual(Array(ply.headerLines.prefix(2)), ["ply", "format binary_little_endian 1.0"])
        XCTAssertEqual(ply.headerLines.filter { $0.hasPrefix("property") },
                       ["property float x", "property float y", "property float z",
                        "property uchar red", "property uchar green", "property uchar blue"])
        XCTAssertEqual(ply.points.count, width * height - 3)
        var worst = 0.0
        for (point, color) in zip(ply.points, ply.colors) {
            let onPlane = n.0 * Double(point.x) + n.1 * Double(point.y) + n.2 * Double(point.z)
            worst = max(worst, abs(onPlane - c))
            // Colours follow their pixel: red = u, green = v, so the point projects back onto (u, v).
            let u = Double(point.x) / Double(point.z) * focal + 19.0, v = Double(point.y) / Double(point.z) * focal + 14.5
            XCTAssertEqual(u, Double(color.0), accuracy: 1e-3)
            XCTAssertEqual(v, Double(color.1), accuracy: 1e-3)
            XCTAssertEqual(color.2, 7)
        }
        // float32 coordinates of points about 2 m away: a few 1e-7 relative.
        XCTAssertLessThan(worst, 2e-6, "farthest point from the plane: \(worst) m")
    }

    func testThePrincipalPointDefaultsToTheImageCentre() throws {
        // Constant disparity: a fronto-parallel plane; the centre pixel of a 3x3 image must land on the axis.
        let left = RGBImage(width: 3, height: 3, pixels: [UInt8](repeating: 9, count: 27))
        let ply = try Self.parsePLY(PointCloud.ply(disparity: [Float](repeating: 5, count: 9)[...], left: left,
                                                   camera: StereoCamera(focalPx: 100, baselineM: 0.1)))
        XCTAssertEqual(ply.points.count, 9)
        XCTAssertEqual(ply.points[4].x, 0)
        XCTAssertEqual(ply.points[4].y, 0)
        XCTAssertEqual(ply.points[4].z, 2, accuracy: 1e-6)
        XCTAssertEqual(ply.points[0].x, -0.02, accuracy: 1e-7)
    }

    private func frames(width: Int, height: Int, count: Int) -> [RGBImage] {
        (0..<count).map { t in
            RGBImage(width: width, height: height, pixels: (0..<(width * height * 3)).map { UInt8(($0 + t * 17) % 251) })
        }
    }

    func testMP4sHaveTheFrameCountSizeAndRateAsked() throws {
        // Odd sizes pad to even; a frame wider than the cap scales down first.
        let cases: [(width: Int, height: Int, maxWidth: Int?, expected: (Int, Int))] = [
            (65, 33, nil, (66, 34)),
            (64, 32, nil, (64, 32)),
            (4200, 21, 4096, (4096, 20)),
        ]
        for (index, c) in cases.enumerated() {
            let url = scratch.appendingPathComponent("clip\(index).mp4")
            let encoder = try MP4Encoder(url: url, width: c.width, height: c.height,
                                         frameRate: FrameRate(numerator: 30000, denominator: 2002)!, frames: 4, maxWidth: c.maxWidth)
            for frame in frames(width: c.width, height: c.height, count: 4) { try encoder.append(frame) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "the file appears only once finished")
            try encoder.finish()
            XCTAssertEqual(encoder.outputWidth, c.expected.0)
            XCTAssertEqual(encoder.outputHeight, c.expected.1)
            let probe = try VideoFixtures.probe(url.path)
            XCTAssertEqual(probe.codec, "h264")
            XCTAssertEqual(probe.pixelFormat, "yuv420p")
            XCTAssertEqual(probe.width, c.expected.0, "\(c)")
            XCTAssertEqual(probe.height, c.expected.1, "\(c)")
            XCTAssertEqual(probe.frames, 4)
            XCTAssertEqual(probe.rate, "15000/1001")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".") }, [],
                       "no partial file left")
    }

    func testACancelledEncoderLeavesNoFile() throws {
        let url = scratch.appendingPathComponent("cancelled.mp4")
        let encoder = try MP4Encoder(url: url, width: 16, height: 16, frameRate: FrameRate(numerator: 30, denominator: 1)!, frames: 2)
        try encoder.append(frames(width: 16, height: 16, count: 1)[0])
        encoder.cancel()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }

    /// `infer` starts the MP4s' encoders before it loads the checkpoint: they wait for the frames (their
    /// wall-clock limit held) writing nothing, give the same files as encoders started with the second pass,
    /// and a run that fails before it leaves neither a file nor an ffmpeg.
    func testVideosStartedBeforeTheRunGiveTheSameFilesAndAnAbandonedRunLeavesNothing() throws {
        let (frames, height, width) = (3, 10, 12)
        let disparity = (0..<(frames * height * width)).map { Float($0 % 29) / 2 }
        let left = self.frames(width: width, height: height, count: frames)
        let rate = FrameRate(numerator: 24, denominator: 1)!
        func run(_ name: String, early: Bool) throws -> [String] {
            let folder = scratch.appendingPathComponent(name)
            let videos = early ? try ResultWriter.startVideos(directory: folder, kinds: [.colorMP4, .videoMP4], frames: frames,
                                                              width: width, height: height, frameRate: rate) : nil
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder.path), "the encoders write nothing before the first frame")
            let writer = try ResultWriter(directory: folder, kinds: [.colorMP4, .videoMP4], camera: nil, frames: frames,
                                          width: width, height: height, videos: videos)
            for t in 0..<frames {
                try writer.add(name: String(format: "%04d", t), disparity: disparity[(t * height * width)..<((t + 1) * height * width)], left: nil)
            }
            var next = 0
            return try writer.finish(frameRate: rate, left: { defer { next += 1 }; return left[next] })
        }
        XCTAssertEqual(try run("late", early: false).sorted(), ["color.mp4", "video.mp4"])
        XCTAssertEqual(try run("early", early: true).sorted(), ["color.mp4", "video.mp4"])
        for name in ["color.mp4", "video.mp4"] {
            let late = try Data(contentsOf: scratch.appendingPathComponent("late/\(name)"))
            let early = try Data(contentsOf: scratch.appendingPathComponent("early/\(name)"))
            XCTAssertEqual(early, late, "\(name): the same encoding whenever ffmpeg started")
            XCTAssertEqual(try VideoFixtures.probe(scratch.appendingPathComponent("early/\(name)").path).frames, frames)
        }

        // A run refused before its writer (a bad checkpoint): nothing written, no ffmpeg left.
        let abandoned = scratch.appendingPathComponent("abandoned")
        try withExtendedLifetime(ResultWriter.startVideos(directory: abandoned, kinds: [.colorMP4, .videoMP4], frames: frames,
                                                          width: width, height: height, frameRate: rate)) { _ in
            XCTAssertEqual(Self.childFFmpegs(), 2, "both encoders wait for their frames")
        }
        XCTAssertEqual(Self.childFFmpegs(), 0, "an abandoned run's encoders are stopped and reaped")
        XCTAssertFalse(FileManager.default.fileExists(atPath: abandoned.path))
        // And one abandoned after its writer was made leaves an empty folder.
        let begun = scratch.appendingPathComponent("begun")
        try withExtendedLifetime(ResultWriter(
            directory: begun, kinds: [.colorMP4, .videoMP4], camera: nil, frames: frames, width: width, height: height,
            videos: ResultWriter.startVideos(directory: begun, kinds: [.colorMP4, .videoMP4], frames: frames,
                                             width: width, height: height, frameRate: rate))) { _ in
            XCTAssertEqual(Self.childFFmpegs(), 2)
        }
        XCTAssertEqual(Self.childFFmpegs(), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: begun.path), [])
    }

    /// How many ffmpeg processes this process has as children (each `/proc/PID/stat`: "pid (comm) state ppid …").
    private static func childFFmpegs() -> Int {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { entry in
            guard Int32(entry) != nil, let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.range(of: ") ", options: .backwards) else { return false }
            let fields = stat[close.upperBound...].split(separator: " ")
            return stat.contains("(ffmpeg)") && fields.count > 1 && Int32(fields[1]) == me
        }.count
    }

    func testOnlyTheResultKindsAskedForAreWritten() throws {
        let (frames, height, width) = (2, 6, 8)
        let disparity = Tensor(shape: [frames, height, width], data: (0..<(frames * height * width)).map { Float($0 % 13) })
        let left = self.frames(width: width, height: height, count: frames)
        let camera = StereoCamera(focalPx: 100, baselineM: 0.1)
        let rate = FrameRate(numerator: 30, denominator: 1)!
        let cases: [(Set<ResultKind>, [String])] = [
            ([.npy], ["disparity.npy"]),
            ([.points, .colorMP4], ["color.mp4", "points/0007.ply", "points/0009.ply"]),
            (ResultKind.defaults(calibrated: true),
             ["color.mp4", "color/0007.png", "color/0009.png", "depth/0007.png", "depth/0009.png", "disparity.npy",
              "disparity/0007.png", "disparity/0009.png", "points/0007.ply", "points/0009.ply",
              "video.mp4", "video/0007.png", "video/0009.png"]),
        ]
        for (index, (kinds, expected)) in cases.enumerated() {
            let folder = scratch.appendingPathComponent("run\(index)")
            let written = try ResultWriter.write(disparity: disparity, names: ["0007", "0009"], left: left, to: folder,
                                                 kinds: kinds, camera: camera, frameRate: rate)
            XCTAssertEqual(written.sorted(), expected.sorted())
            let enumerator = FileManager.default.enumerator(atPath: folder.path)!
            let onDisk = (enumerator.allObjects as! [String]).filter { !$0.hasSuffix("/") && ![ "color", "depth", "disparity", "points", "video"].contains($0) }
            XCTAssertEqual(onDisk.sorted(), expected.sorted(), "\(kinds)")
        }
        // The default set's files are the ones a job stores, byte for byte: the window's per-frame PNGs, and the
        // finishing step's colouring on the video's one scale (its smallest to its largest disparity).
        let plane = height * width
        let scale = FrameRendering.scale(lower: disparity.data.min(), upper: disparity.data.max())
        XCTAssertEqual(scale, ColorMap.Scale(lower: 0, upper: 12))
        for (t, name) in ["0007", "0009"].enumerated() {
            let frame = disparity.data[t * plane..<(t + 1) * plane]
            func onDisk(_ path: String) throws -> Data { try Data(contentsOf: scratch.appendingPathComponent("run2").appendingPathComponent(path)) }
            XCTAssertEqual(try onDisk("disparity/\(name).png"), try FrameRendering.disparityPNG(frame, width: width, height: height))
            XCTAssertEqual(try onDisk("depth/\(name).png"), try FrameRendering.depthPNG(frame, width: width, height: height, focalPx: 100, baselineM: 0.1))
            let rendered = try FrameRendering.colorAndVideo(frame, width: width, height: height, scale: scale, left: left[t])
            XCTAssertEqual(try onDisk("color/\(name).png"), rendered.color)
            XCTAssertEqual(try onDisk("video/\(name).png"), rendered.video)
        }
        XCTAssertEqual(try NPY.read(scratch.appendingPathComponent("run2/disparity.npy")).data, disparity.data)
    }

    func testTheResolutionCapScalesTheLongerSideAndBringsDisparityBack() {
        let cap = ResolutionCap(maxSize: 640)
        XCTAssertTrue(cap.networkSize(width: 1920, height: 1080) == (640, 360))
        XCTAssertTrue(cap.networkSize(width: 1080, height: 1920) == (360, 640))
        XCTAssertTrue(cap.networkSize(width: 640, height: 480) == (640, 480))
        XCTAssertTrue(cap.networkSize(width: 1000, height: 3) == (640, 2))
        // A constant disparity of 2 px at half width is 4 px at full width, everywhere.
        let small = Tensor(shape: [1, 4, 5], repeating: 2)
        let back = ResolutionCap.upsample(small, width: 10, height: 8)
        XCTAssertEqual(back.shape, [1, 8, 10])
        XCTAssertTrue(back.data.allSatisfy { $0 == 4 })
        // Area averaging of an image: 2x2 blocks average, rounded.
        let image = RGBImage(width: 2, height: 2, pixels: [0, 10, 20, 1, 11, 21, 2, 12, 22, 4, 13, 23])
        XCTAssertEqual(ResolutionCap.downscale(image, width: 1, height: 1).pixels, [2, 12, 22])
    }
}
