// The parameters of one run of the network over a video, and the one place their rules live.

/// Where a parameter came from, so that an error names it the way its user spelled it.
public enum ParameterSurface: Sendable {
    /// `dynstereo infer` flags: `--iters`, `--kernel-size`, `--focal-px`, `--baseline-m`.
    case commandLine
    /// The HTTP form fields and job JSON: `iters`, `kernel_size`, `focal_px`, `baseline_m`.
    case http
}

/// A parameter of `InferenceParameters`, named per surface.
public enum InferenceParameter: String, CaseIterable, Sendable {
    case iters, kernelSize, focalPx, baselineM

    /// The name a user of `surface` typed.
    public func spelled(for surface: ParameterSurface) -> String {
        let snake: String
        switch self {
        case .iters: snake = "iters"
        case .kernelSize: snake = "kernel_size"
        case .focalPx: snake = "focal_px"
        case .baselineM: snake = "baseline_m"
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

    /// The reference's evaluation defaults.
    public static let defaultIters = 20
    public static let defaultKernelSize = 20
    /// At least 2: the 1/16 and 1/8 scales each run `iters / 2` iterations and need one.
    /// At most 100: beyond it the refinement has long converged and a job only burns CPU.
    public static let itersRange = 2...100
    /// At least 2 (a window of one frame has no temporal context); at most 64 frames in memory at once.
    public static let kernelSizeRange = 2...64

    public init(iters: Int = defaultIters, kernelSize: Int = defaultKernelSize,
                focalPx: Double? = nil, baselineM: Double? = nil) {
        self.iters = iters
        self.kernelSize = kernelSize
        self.focalPx = focalPx
        self.baselineM = baselineM
    }

    /// Whether depth outputs can be made (both calibration values are set).
    public var isCalibrated: Bool { focalPx != nil && baselineM != nil }

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
    }
}

private extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}
