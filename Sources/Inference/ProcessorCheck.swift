// Refusing a processor the kernels were not compiled for, with a message instead of a SIGILL.
import Foundation
import TensorKernels

/// Checks, before the network is built, that this processor has every feature the kernels were compiled
/// for (`BuildTarget.requiredCPUFlags`).
///
/// This module is compiled for the baseline target, so the check itself runs anywhere. Where /proc/cpuinfo
/// cannot be read (not Linux, or a sandbox hiding it), nothing is refused: the check can only say no when it
/// knows.
public enum ProcessorCheck {
    /// The required flags missing from a /proc/cpuinfo text (its first `flags` line), in `required`'s order;
    /// nil when the text has no flags line.
    public static func missingFlags(cpuinfo: String, required: [String]) -> [String]? {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return nil }
        let present = Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        return required.filter { !present.contains($0) }
    }

    /// Throws `ProcessorError.missingFeatures` when this processor lacks a feature the build needs.
    public static func requireBuildTarget(cpuinfo path: String = "/proc/cpuinfo") throws {
        let required = BuildTarget.requiredCPUFlags
        guard !required.isEmpty, let text = try? String(contentsOfFile: path, encoding: .utf8),
              let missing = missingFlags(cpuinfo: text, required: required), !missing.isEmpty else { return }
        throw ProcessorError.missingFeatures(missing)
    }
}

/// A processor this build cannot run the network on.
public enum ProcessorError: Error, CustomStringConvertible, Equatable {
    case missingFeatures([String])

    public var description: String {
        switch self {
        case let .missingFeatures(flags):
            return "this build of dynstereo runs the network with AVX2 and FMA (Intel Haswell or later, any AMD Zen), "
                + "and this processor lacks \(flags.joined(separator: ", ")); rebuild it for the baseline with "
                + "DYNSTEREO_PORTABLE=1 swift build -c release"
        }
    }
}
