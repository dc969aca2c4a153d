// The parameters of one run of the network over a video, and the one place their rules live.

/// Where a parameter came from, so that an error names it the way its user spelled it.
public enum ParameterSurface: Sendable {
    /// `dynstereo infer` flags: `--iters`, `--kernel-size`, `--focal-px`, `--baseline-m`, `--max-size`, ...
    case commandLine
    /// The HTTP form fields and job JSON: `iters`, `kernel_size`, `focal_px`, `baseline_m`, `max_size`, ...
    case http
}

/// A parameter of `InferenceParameters`, named per surface.
public enum InferenceParameter: String, CaseIterable, Sendable {
    case iters, kernelSize, focalPx, baselineM
    case startFrame, frameStep, frameCount, maxSize, fps, cxPx, cyPx, maxDepthM, outputs

    /// The name a user of `surface` typed.
    public func spelled(for surface: ParameterSurface) -> String {
        let snake: String
        switch self {
        case .iters: snake = "iters"
        case .kernelSize: snake = "kernel_size"
        case .focalPx: snake = "focal_px"
        case .baselineM: snake = "baseline_m"
        case .startFrame: snake = "start_frame"
        case .frameStep: snake = "frame_step"
        case .frameCount: snake = "frame_count"
        case .maxSize: snake = "max_size"
        case .fps: snake = "fps"
        case .cxPx: snake = "cx_px"
        case .cyPx: snake = "cy_px"
        case .maxDepthM: snake = "max_depth_m"
        case .outputs: snake = "outputs"
        }
        switch surface {
        case .http: return snake
        case .commandLine: return "--" + snake.replacingUnderscores()
        }
    }
}

/// A parameter outside its rule. `message(for:)` words it for the surface the value came from.
public struct InvalidInferenceParameter: Error, Equatable, Sendable {
    /// The rules a value can break.
    public enum Problem: Equatable, Sendable {
        case outOfRange(ClosedRange<Int>, got: Int)
        case notPositive(got: Double)
        /// Given without its partner (calibration needs both values).
        case requiresPartner(InferenceParameter)
        /// Below a lower bound (`start_frame` 0, `frame_step` 1, `max_size` 32).
        case atLeast(Int, got: Int)
        case notFinite(got: Double)
        /// A point-cloud setting without the calibration point clouds need.
        case requiresCalibration
        /// An empty `outputs` list.
        case noResultKinds
        /// A result kind in `outputs` that needs the calibration (`depth`, `points`).
        case kindNeedsCalibration(String)
    }

    public let parameter: InferenceParameter
    public let problem: Problem

    /// "kernel_size must be in 2...64, got 65" over HTTP, "--kernel-size must be ..." in the CLI.
    public func message(for surface: ParameterSurface) -> String {
        let name = parameter.spelled(for: surface)
        switch problem {
        case let .outOfRange(range, got): return "\(name) must be in \(range), got \(got)"
        case let .notPositive(got): return "\(name) must be a positive number, got \(got)"
        case let .requiresPartner(partner):
            return "\(name) and \(partner.spelled(for: surface)) must be given together (depth needs both)"
        case let .atLeast(bound, got): return "\(name) must be \(bound) or more, got \(got)"
        case let .notFinite(got): return "\(name) must be a finite number, got \(got)"
        case .requiresCalibration:
            return "\(name) is for points, which need \(InferenceParameter.focalPx.spelled(for: surface)) and \(InferenceParameter.baselineM.spelled(for: surface))"
        case .noResultKinds: return "\(name): name at least one result"
        case let .kindNeedsCalibration(kind):
            return "\(name): \(kind) needs \(InferenceParameter.focalPx.spelled(for: surface)) and \(InferenceParameter.baselineM.spelled(for: surface))"
        }
    }
}

/// How to run the network on a video, and optionally how to turn disparity into depth.
///
/// Every surface (CLI, HTTP, the queue, the database's CHECK constraints) applies the same rules, which live
/// here only: `iters` in `itersRange`, `kernelSize` in `kernelSizeRange`, `focalPx` and `baselineM` both or
/// neither, each finite and positive.
public struct InferenceParameters: Codable, Equatable, Sendable {
    /// Refinement iterations at 1/4 scale (half as many run at 1/16 and at 1/8).
    public var iters: Int
    /// Frames per sliding window.
    public var kernelSize: Int
    /// Focal length in pixels; with `baselineM`, enables depth outputs.
    public var focalPx: Double?
    /// Stereo baseline in metres.
    public var baselineM: Double?
    /// Which source frames run (`start_frame`, `frame_step`, `frame_count`).
    public var selection: FrameSelection
    /// The longest side the network sees (`max_size`); nil: full resolution.
    public var maxSize: Int?
    /// The MP4s' frame rate for frame input (`fps`; nil: 30). A video's own rate / `frame_step` otherwise.
    public var fps: Double?
    /// The principal point of `points/` (nil: the image centre) and the depth beyond which points are dropped.
    public var cxPx: Double?
    public var cyPx: Double?
    public var maxDepthM: Double?
    /// The result kinds to render (`outputs`); nil: every kind that applies (`ResultKind.defaults`).
    public var outputs: Set<ResultKind>?

    /// The reference's evaluation defaults.
    public static let defaultIters = 20
    public static let defaultKernelSize = 20
    /// At least 2: the 1/16 and 1/8 scales each run `iters / 2` iterations and need one.
    /// At most 100: beyond it the refinement has long converged and a job only burns CPU.
    public static let itersRange = 2...100
    /// At least 2 (a window of one frame has no temporal context); at most 64 frames in memory at once.
    public static let kernelSizeRange = 2...64
    /// Below 32 px the network's 1/16 scale has under two pixels a side.
    public static let minMaxSize = 32
    /// The MP4s' rate for frames from folders and tars when `fps` is not given.
    public static let defaultFPS = 30.0

    public init(iters: Int = defaultIters, kernelSize: Int = defaultKernelSize,
                focalPx: Double? = nil, baselineM: Double? = nil, selection: FrameSelection = .all,
                maxSize: Int? = nil, fps: Double? = nil, cxPx: Double? = nil, cyPx: Double? = nil,
                maxDepthM: Double? = nil, outputs: Set<ResultKind>? = nil) {
        self.iters = iters
        self.kernelSize = kernelSize
        self.focalPx = focalPx
        self.baselineM = baselineM
        self.selection = selection
        self.maxSize = maxSize
        self.fps = fps
        self.cxPx = cxPx
        self.cyPx = cyPx
        self.maxDepthM = maxDepthM
        self.outputs = outputs
    }

    private enum CodingKeys: String, CodingKey {
        case iters, kernelSize, focalPx, baselineM, selection, maxSize, fps, cxPx, cyPx, maxDepthM, outputs
    }

    /// Values encoded before the video settings existed (the first four keys only) decode with their defaults.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(iters: try container.decode(Int.self, forKey: .iters),
                  kernelSize: try container.decode(Int.self, forKey: .kernelSize),
                  focalPx: try container.decodeIfPresent(Double.self, forKey: .focalPx),
                  baselineM: try container.decodeIfPresent(Double.self, forKey: .baselineM),
                  selection: try container.decodeIfPresent(FrameSelection.self, forKey: .selection) ?? .all,
                  maxSize: try container.decodeIfPresent(Int.self, forKey: .maxSize),
                  fps: try container.decodeIfPresent(Double.self, forKey: .fps),
                  cxPx: try container.decodeIfPresent(Double.self, forKey: .cxPx),
                  cyPx: try container.decodeIfPresent(Double.self, forKey: .cyPx),
                  maxDepthM: try container.decodeIfPresent(Double.self, forKey: .maxDepthM),
                  outputs: try container.decodeIfPresent(Set<ResultKind>.self, forKey: .outputs))
    }

    /// Whether depth outputs can be made (both calibration values are set).
    public var isCalibrated: Bool { focalPx != nil && baselineM != nil }

    /// The kinds a run renders: `outputs`, or every kind that applies.
    public var resultKinds: Set<ResultKind> { outputs ?? ResultKind.defaults(calibrated: isCalibrated) }

    /// Throws the first broken rule.
    public func validate() throws(InvalidInferenceParameter) {
        guard Self.itersRange.contains(iters) else {
            throw InvalidInferenceParameter(parameter: .iters, problem: .outOfRange(Self.itersRange, got: iters))
        }
        guard Self.kernelSizeRange.contains(kernelSize) else {
            throw InvalidInferenceParameter(parameter: .kernelSize,
                                            problem: .outOfRange(Self.kernelSizeRange, got: kernelSize))
        }
        if let focalPx, !(focalPx.isFinite && focalPx > 0) {
            throw InvalidInferenceParameter(parameter: .focalPx, problem: .notPositive(got: focalPx))
        }
        if let baselineM, !(baselineM.isFinite && baselineM > 0) {
            throw InvalidInferenceParameter(parameter: .baselineM, problem: .notPositive(got: baselineM))
        }
        if focalPx != nil, baselineM == nil {
            throw InvalidInferenceParameter(parameter: .focalPx, problem: .requiresPartner(.baselineM))
        }
        if baselineM != nil, focalPx == nil {
            throw InvalidInferenceParameter(parameter: .baselineM, problem: .requiresPartner(.focalPx))
        }
        if selection.start < 0 {
            throw InvalidInferenceParameter(parameter: .startFrame, problem: .atLeast(0, got: selection.start))
        }
        if selection.step < 1 {
            throw InvalidInferenceParameter(parameter: .frameStep, problem: .atLeast(1, got: selection.step))
        }
        if let count = selection.count, count < 1 {
            throw InvalidInferenceParameter(parameter: .frameCount, problem: .atLeast(1, got: count))
        }
        if let maxSize, maxSize < Self.minMaxSize {
            throw InvalidInferenceParameter(parameter: .maxSize, problem: .atLeast(Self.minMaxSize, got: maxSize))
        }
        if let fps, !(fps.isFinite && fps > 0 && fps < 1e6) {
            throw InvalidInferenceParameter(parameter: .fps, problem: .notPositive(got: fps))
        }
        for (parameter, value) in [(InferenceParameter.cxPx, cxPx), (.cyPx, cyPx)] {
            guard let value else { continue }
            guard value.isFinite else { throw InvalidInferenceParameter(parameter: parameter, problem: .notFinite(got: value)) }
        }
        if let maxDepthM, !(maxDepthM.isFinite && maxDepthM > 0) {
            throw InvalidInferenceParameter(parameter: .maxDepthM, problem: .notPositive(got: maxDepthM))
        }
        for (parameter, value) in [(InferenceParameter.cxPx, cxPx), (.cyPx, cyPx), (.maxDepthM, maxDepthM)] where value != nil && !isCalibrated {
            throw InvalidInferenceParameter(parameter: parameter, problem: .requiresCalibration)
        }
        if let outputs {
            if outputs.isEmpty {
                throw InvalidInferenceParameter(parameter: .outputs, problem: .noResultKinds)
            }
            if let kind = outputs.sorted(by: { $0.rawValue < $1.rawValue }).first(where: { $0.needsCalibration && !isCalibrated }) {
                throw InvalidInferenceParameter(parameter: .outputs, problem: .kindNeedsCalibration(kind.rawValue))
            }
        }
    }
}

private extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}
