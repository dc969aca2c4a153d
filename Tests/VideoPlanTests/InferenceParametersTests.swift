import XCTest
import VideoPlan

/// The one set of parameter rules, and how each surface words a broken one.
final class InferenceParametersTests: XCTestCase {
    private func problem(_ p: InferenceParameters) -> InvalidInferenceParameter? {
        do { try p.validate(); return nil } catch { return error }
    }

    func testDefaultsAndBoundsPass() {
        XCTAssertNil(problem(InferenceParameters()))
        XCTAssertNil(problem(InferenceParameters(iters: 2, kernelSize: 2)))
        XCTAssertNil(problem(InferenceParameters(iters: 100, kernelSize: 64, focalPx: 720, baselineM: 0.12)))
    }

    func testEachRuleNamesItsParameterAsTheSurfaceSpellsIt() {
        let kernel = problem(InferenceParameters(kernelSize: 65))
        XCTAssertEqual(kernel?.parameter, .kernelSize)
        XCTAssertEqual(kernel?.message(for: .http), "kernel_size must be in 2...64, got 65")
        XCTAssertEqual(kernel?.message(for: .commandLine), "--kernel-size must be in 2...64, got 65")

        XCTAssertEqual(problem(InferenceParameters(iters: 1))?.message(for: .http), "iters must be in 2...100, got 1")
        XCTAssertEqual(problem(InferenceParameters(iters: 101))?.message(for: .commandLine), "--iters must be in 2...100, got 101")

        let focal = problem(InferenceParameters(focalPx: -1, baselineM: 0.1))
        XCTAssertEqual(focal?.parameter, .focalPx)
        XCTAssertEqual(focal?.message(for: .http), "focal_px must be a positive number, got -1.0")
        XCTAssertEqual(problem(InferenceParameters(focalPx: 700, baselineM: .infinity))?.parameter, .baselineM)
        XCTAssertEqual(problem(InferenceParameters(focalPx: 700, baselineM: .nan))?.parameter, .baselineM)
    }

    func testCalibrationNeedsBothValues() {
        let onlyFocal = problem(InferenceParameters(focalPx: 700))
        XCTAssertEqual(onlyFocal?.message(for: .commandLine), "--focal-px and --baseline-m must be given together (depth needs both)")
        let onlyBaseline = problem(InferenceParameters(baselineM: 0.1))
        XCTAssertEqual(onlyBaseline?.message(for: .http), "baseline_m and focal_px must be given together (depth needs both)")
        XCTAssertFalse(InferenceParameters(focalPx: 700).isCalibrated)
        XCTAssertTrue(InferenceParameters(focalPx: 700, baselineM: 0.1).isCalibrated)
    }

    /// The parameters are stored as JSON in job rows: the keys must not change under a stored job.
    func testJSONKeysAreStable() throws {
        let data = try JSONEncoder().encode(InferenceParameters(iters: 4, kernelSize: 8, focalPx: 1, baselineM: 2))
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any]).keys.sorted()
        XCTAssertEqual(keys, ["baselineM", "focalPx", "iters", "kernelSize", "selection"], "unset video settings are left out")
        let old = Data(#"{"iters": 4, "kernelSize": 8, "focalPx": 1, "baselineM": 2}"#.utf8)
        XCTAssertEqual(try JSONDecoder().decode(InferenceParameters.self, from: old),
                       InferenceParameters(iters: 4, kernelSize: 8, focalPx: 1, baselineM: 2), "values from before them still decode")
    }

    func testTheVideoSettingsRulesSpeakEachSurface() {
        let calibrated = InferenceParameters(focalPx: 700, baselineM: 0.1)
        XCTAssertNil(problem(InferenceParameters(focalPx: 700, baselineM: 0.1, selection: FrameSelection(start: 3, step: 2, count: 5),
                                                 maxSize: 32, cxPx: -4, cyPx: 1e6, maxDepthM: 20, outputs: [.points])))
        func message(_ change: (inout InferenceParameters) -> Void, _ surface: ParameterSurface) -> String? {
            var parameters = calibrated
            change(&parameters)
            return problem(parameters)?.message(for: surface)
        }
        XCTAssertEqual(message({ $0.selection.start = -1 }, .http), "start_frame must be 0 or more, got -1")
        XCTAssertEqual(message({ $0.selection.step = 0 }, .commandLine), "--frame-step must be 1 or more, got 0")
        XCTAssertEqual(message({ $0.selection.count = 0 }, .http), "frame_count must be 1 or more, got 0")
        XCTAssertEqual(message({ $0.maxSize = 31 }, .commandLine), "--max-size must be 32 or more, got 31")
        XCTAssertEqual(message({ $0.fps = 0 }, .http), "fps must be a positive number, got 0.0")
        XCTAssertEqual(message({ $0.cxPx = .nan }, .http), "cx_px must be a finite number, got nan")
        XCTAssertEqual(message({ $0.maxDepthM = -1 }, .commandLine), "--max-depth-m must be a positive number, got -1.0")
        XCTAssertEqual(message({ $0.outputs = [] }, .http), "outputs: name at least one result")
        XCTAssertEqual(message({ $0.focalPx = nil; $0.baselineM = nil; $0.cyPx = 3 }, .http),
                       "cy_px is for points, which need focal_px and baseline_m")
        XCTAssertEqual(message({ $0.focalPx = nil; $0.baselineM = nil; $0.outputs = [.npy, .depth] }, .commandLine),
                       "--outputs: depth needs --focal-px and --baseline-m")
        XCTAssertEqual(InferenceParameters(outputs: [.npy]).resultKinds, [.npy])
        XCTAssertEqual(InferenceParameters().resultKinds, ResultKind.defaults(calibrated: false))
        XCTAssertEqual(calibrated.resultKinds, Set(ResultKind.allCases))
    }
}
