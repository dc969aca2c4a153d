// The kinds of result file a run renders, chosen by the user so that unwanted ones cost nothing.

/// One kind of result. Raw values are the names users write in `--outputs` / `outputs`.
public enum ResultKind: String, CaseIterable, Codable, Sendable {
    /// `disparity.npy`, float32 [T, H, W].
    case npy
    /// `disparity/NNNN.png`, 16-bit KITTI disparity.
    case disparity
    /// `color/NNNN.png`, the colour-mapped disparity.
    case color
    /// `video/NNNN.png`, the left frame beside its colour map.
    case video
    /// `depth/NNNN.png`, 16-bit millimetres (calibrated runs only).
    case depth
    /// `points/NNNN.ply`, a coloured point cloud in metres (calibrated runs only).
    case points
    /// `video.mp4`, the `video/` frames as H.264.
    case videoMP4 = "video_mp4"
    /// `color.mp4`, the `color/` frames as H.264.
    case colorMP4 = "color_mp4"

    /// Whether this kind needs the focal length and baseline.
    public var needsCalibration: Bool { self == .depth || self == .points }

    /// Every kind that applies to a run: all of them, depth and points only when calibrated.
    public static func defaults(calibrated: Bool) -> Set<ResultKind> {
        Set(allCases.filter { calibrated || !$0.needsCalibration })
    }

    /// Parses a comma-separated list (`npy,color_mp4`), or returns the defaults when `list` is nil.
    /// Unknown names, an empty list and calibrated kinds without calibration are errors worded for `surface`.
    public static func parse(_ list: String?, calibrated: Bool, surface: ParameterSurface) throws(InvalidResultKinds) -> Set<ResultKind> {
        let name = surface == .http ? "outputs" : "--outputs"
        guard let list else { return defaults(calibrated: calibrated) }
        var kinds: Set<ResultKind> = []
        for item in list.split(separator: ",", omittingEmptySubsequences: false) {
            let word = item.trimmingSpaces()
            guard let kind = ResultKind(rawValue: word) else {
                let known = allCases.map(\.rawValue).joined(separator: ", ")
                throw InvalidResultKinds(message: "\(name): unknown result '\(word)' (choose from \(known))")
            }
            if kind.needsCalibration && !calibrated {
                let calibration = surface == .http ? "focal_px and baseline_m" : "--focal-px and --baseline-m"
                throw InvalidResultKinds(message: "\(name): \(kind.rawValue) needs \(calibration)")
            }
            kinds.insert(kind)
        }
        return kinds
    }
}

/// A bad `outputs` list; `message` names the field as the user spelled it.
public struct InvalidResultKinds: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

private extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
