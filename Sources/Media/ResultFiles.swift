// The files a finished job produces; the CLI writes them to a folder, the worker stores them, the server serves them.
import Foundation
import TensorKernels

/// One result file: its path inside the result (e.g. `disparity/0007.png`) and its bytes.
public struct ResultFile: Equatable, Sendable {
    public let path: String
    public let data: Data

    public init(path: String, data: Data) {
        self.path = path
        self.data = data
    }
}

/// Builds the product's result files from a disparity video. Paths are fixed by the product:
///
///     disparity.npy          float32 [T, H, W]
///     disparity/NNNN.png     16-bit gray, round(d * 256) clamped to 0...65535 (the KITTI convention)
///     color/NNNN.png         8-bit inferno colouring, one scale for the whole video
///     depth/NNNN.png         16-bit depth in millimetres, only when focal length and baseline are given
///     video/NNNN.png         the left frame beside its colouring (width 2W), only when left frames are given
///
/// NNNN is the input frame's name without its extension.
public enum ResultFiles {
    public static let disparityArrayPath = "disparity.npy"

    /// Disparities at or below this (in pixels) have no meaningful depth; their depth pixel is 0.
    static let minimumDisparityForDepth: Float = 1e-6

    /// Makes every result file. `disparity` is [T, H, W]; `frameNames` has T distinct names (a trailing `.png` is
    /// dropped); `left` is empty (no video frames) or T images of W × H. `focalPx` (pixels) and `baselineM`
    /// (metres) come together or not at all.
    public static func make(disparity: Tensor, frameNames: [String], left: [RGBImage],
                            focalPx: Double?, baselineM: Double?) throws -> [ResultFile] {
        guard disparity.rank == 3 else {
            throw MediaError.invalidArgument("disparity must be [T, H, W], got \(disparity.shape)")
        }
        let (frames, height, width) = disparity.dims3
        guard frames > 0, height > 0, width > 0 else {
            throw MediaError.invalidArgument("disparity \(disparity.shape) is empty")
        }
        guard frameNames.count == frames else {
            throw MediaError.invalidArgument("\(frameNames.count) frame names for \(frames) disparity frames")
        }
        let names = try frameNames.map(stem)
        if let duplicate = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw MediaError.invalidArgument("frame name \(duplicate) appears twice")
        }
        guard left.isEmpty || left.count == frames else {
            throw MediaError.invalidArgument("\(left.count) left images for \(frames) disparity frames")
        }
        if let index = left.firstIndex(where: { $0.width != width || $0.height != height }) {
            throw MediaError.invalidArgument("left image \(names[index]) is \(left[index].width)x\(left[index].height), disparity is \(width)x\(height)")
        }
        let focalTimesBaseline = try depthFactor(focalPx: focalPx, baselineM: baselineM)

        let pixels = height * width
        func frame(_ t: Int) -> ArraySlice<Float> { disparity.data[t * pixels..<(t + 1) * pixels] }
        let scale = ColorMap.robustScale(disparity.data)

        var disparityPNGs: [ResultFile] = [], colorPNGs: [ResultFile] = [], depthPNGs: [ResultFile] = [], videoPNGs: [ResultFile] = []
        for t in 0..<frames {
            let name = names[t]
            disparityPNGs.append(ResultFile(path: "disparity/\(name).png", data: try PNG.encodeGray16(
                width: width, height: height, samples: frame(t).map(kittiSample))))
            let colored = ColorMap.colorize(frame(t), width: width, height: height, scale: scale)
            colorPNGs.append(ResultFile(path: "color/\(name).png", data: try PNG.encodeRGB8(colored)))
            if let focalTimesBaseline {
                depthPNGs.append(ResultFile(path: "depth/\(name).png", data: try PNG.encodeGray16(
                    width: width, height: height,
                    samples: frame(t).map { depthMillimetres(disparity: $0, focalTimesBaseline: focalTimesBaseline) })))
            }
            if !left.isEmpty {
                videoPNGs.append(ResultFile(path: "video/\(name).png",
                                            data: try PNG.encodeRGB8(sideBySide(left[t], colored))))
            }
        }
        return [ResultFile(path: disparityArrayPath, data: NPY.encode(disparity))]
            + disparityPNGs + colorPNGs + depthPNGs + videoPNGs
    }

    /// Writes `files` under `directory`, creating the subfolders.
    public static func write(_ files: [ResultFile], to directory: URL) throws {
        do {
            for file in files {
                let url = directory.appendingPathComponent(file.path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try file.data.write(to: url, options: .atomic)
            }
        } catch {
            throw MediaError.unreadable(path: directory.path, reason: "cannot write results: \(error.localizedDescription)")
        }
    }

    /// The media type to serve a result file with.
    public static func contentType(of path: String) -> String {
        path.hasSuffix(".png") ? "image/png" : "application/octet-stream"
    }

    /// KITTI's 16-bit disparity: round(d × 256), clamped to 0...65535; NaN becomes 0 (KITTI's "no value").
    static func kittiSample(_ disparity: Float) -> UInt16 {
        guard !disparity.isNaN else { return 0 }
        return UInt16(min(max((Double(disparity) * 256).rounded(), 0), 65535))
    }

    /// Depth in millimetres: focal_px × baseline_m × 1000 / d, or 0 where d is about 0 (or not a number) and
    /// where the depth does not fit 16 bits, so 0 always means "no depth" rather than a wrong near value.
    static func depthMillimetres(disparity: Float, focalTimesBaseline: Double) -> UInt16 {
        guard disparity.isFinite, disparity > minimumDisparityForDepth else { return 0 }
        let millimetres = (focalTimesBaseline * 1000 / Double(disparity)).rounded()
        guard millimetres <= 65535 else { return 0 }
        return UInt16(millimetres)
    }

    /// focal × baseline, checked; nil when neither is given.
    static func depthFactor(focalPx: Double?, baselineM: Double?) throws -> Double? {
        switch (focalPx, baselineM) {
        case (nil, nil):
            return nil
        case let (focal?, baseline?):
            guard focal.isFinite, focal > 0, baseline.isFinite, baseline > 0 else {
                throw MediaError.invalidArgument("focal length (\(focal) px) and baseline (\(baseline) m) must be positive")
            }
            return focal * baseline
        default:
            throw MediaError.invalidArgument("depth needs both the focal length in pixels and the baseline in metres")
        }
    }

    static func stem(_ name: String) throws -> String {
        let stem = name.lowercased().hasSuffix(".png") ? String(name.dropLast(4)) : name
        guard !stem.isEmpty, stem != ".", stem != "..", !stem.contains("/"), !stem.contains("\\"), !stem.utf8.contains(0) else {
            throw MediaError.invalidArgument("'\(name)' cannot name a result file")
        }
        return stem
    }

    /// `left` on the left, `right` on the right, both W × H.
    static func sideBySide(_ left: RGBImage, _ right: RGBImage) -> RGBImage {
        let width = left.width, height = left.height
        var pixels = [UInt8](repeating: 0, count: width * 2 * height * 3)
        for y in 0..<height {
            let row = width * 3
            pixels.replaceSubrange(y * 2 * row..<y * 2 * row + row, with: left.pixels[y * row..<(y + 1) * row])
            pixels.replaceSubrange(y * 2 * row + row..<(y + 1) * 2 * row, with: right.pixels[y * row..<(y + 1) * row])
        }
        return RGBImage(width: width * 2, height: height, pixels: pixels)
    }
}
