// The check that refuses a processor the kernels were not compiled for, on /proc/cpuinfo texts of both kinds.
import Foundation
import Inference
import TensorKernels
import XCTest

final class ProcessorCheckTests: XCTestCase {
    private let haswellFlags = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "popcnt", "abm"]

    /// Two processors' first lines, trimmed: a Zen 3 (every feature) and a Sandy Bridge (AVX, no AVX2 or FMA).
    private let zen3 = """
        processor\t: 0
        model name\t: AMD EPYC
        flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c abm avx2 bmi1 bmi2 sha_ni
        processor\t: 1
        """
    private let sandyBridge = """
        processor\t: 0
        model name\t: Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz
        flags\t\t: fpu vme sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt aes xsave avx
        """

    func testAProcessorWithEveryFeatureLacksNoneAndAnOlderOneIsToldWhatItLacks() {
        XCTAssertEqual(ProcessorCheck.missingFlags(cpuinfo: zen3, required: haswellFlags), [])
        XCTAssertEqual(ProcessorCheck.missingFlags(cpuinfo: sandyBridge, required: haswellFlags),
                       ["avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "abm"])
        XCTAssertNil(ProcessorCheck.missingFlags(cpuinfo: "processor\t: 0\n", required: haswellFlags), "no flags line: no verdict")
    }

    func testTheRefusalNamesTheMissingFeaturesAndTheWayOut() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cpuinfo-\(UUID().uuidString)")
        try Data(sandyBridge.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        guard !BuildTarget.requiredCPUFlags.isEmpty else {
            // A portable build needs nothing: even the old processor passes.
            XCTAssertNoThrow(try ProcessorCheck.requireBuildTarget(cpuinfo: file.path))
            return
        }
        XCTAssertThrowsError(try ProcessorCheck.requireBuildTarget(cpuinfo: file.path)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("lacks avx2, fma"), message)
            XCTAssertTrue(message.contains("DYNSTEREO_PORTABLE=1"), message)
        }
        // This machine runs the tests, so it has what the build needs; an unreadable file refuses nothing.
        XCTAssertNoThrow(try ProcessorCheck.requireBuildTarget())
        XCTAssertNoThrow(try ProcessorCheck.requireBuildTarget(cpuinfo: "/nonexistent/cpuinfo"))
    }
}
