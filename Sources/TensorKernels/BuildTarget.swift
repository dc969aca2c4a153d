// What processor the tensor kernels were compiled for.

/// The instruction-set features this build of the kernels (and of the network beside them) assumes.
///
/// On x86-64 both modules are compiled for Haswell unless `DYNSTEREO_PORTABLE=1` (see Package.swift), so their
/// code may use any of these features anywhere. A processor without one of them would stop the process with
/// SIGILL at the first such instruction; `ProcessorCheck` (module Inference, compiled for the baseline) compares
/// this list with the processor's before any kernel runs.
public enum BuildTarget {
    /// The feature flags as Linux's /proc/cpuinfo spells them: those `-target-cpu haswell` enables
    /// (`abm` is LZCNT), or none for a baseline build.
    public static let requiredCPUFlags: [String] = {
        #if DYNSTEREO_AVX2
        return ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "popcnt", "abm"]
        #else
        return []
        #endif
    }()
}
