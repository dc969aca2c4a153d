import Foundation
import XCTest
@testable import TensorKernels

/// The branch-free activations against libm on a dense sweep and at the edges of their ranges.
final class ActivationTests: XCTestCase {
    /// Every 1/1024 from -100 to 100 plus the clamping edges and zeros.
    private let inputs: [Float] = (-102_400...102_400).map { Float($0) / 1024 }
        + [-Float.greatestFiniteMagnitude, -88.5, -87, 88, 88.5, Float.greatestFiniteMagnitude, -0.0, 1e-30, -1e-30]

    func testExpIsWithinAFewUlpsOfLibm() {
        var worst: Float = 0, at: Float = 0
        for x in inputs where x >= -87 && x <= 88 {
            let relative = abs(fastExp(x) - expf(x)) / expf(x)
            if relative > worst { (worst, at) = (relative, x) }
        }
        // 3 ulps of float (2^-23 ≈ 1.2e-7 each): far below what the network's 2e-3 px bound could notice.
        XCTAssertLessThanOrEqual(worst, 3.6e-7, "worst relative error \(worst) at x = \(at)")
        XCTAssertTrue(fastExp(-1000).isFinite && fastExp(-1000) >= 0 && fastExp(-1000) < 1e-37)
        XCTAssertTrue(fastExp(1000).isFinite && fastExp(1000) > 1e38)
    }

    func testSigmoidAndTanhAreWithinAbsoluteBoundsOfLibm() {
        var worstSigmoid: Float = 0, worstTanh: Float = 0
        for x in inputs {
            worstSigmoid = max(worstSigmoid, abs(fastSigmoid(x) - 1 / (1 + expf(-x))))
            worstTanh = max(worstTanh, abs(fastTanh(x) - tanhf(x)))
        }
        // Values in [-1, 1]: a few float ulps of 1 in absolute terms.
        XCTAssertLessThanOrEqual(worstSigmoid, 2.5e-7)
        XCTAssertLessThanOrEqual(worstTanh, 5e-7)
        XCTAssertEqual(fastTanh(.greatestFiniteMagnitude), 1)
        XCTAssertEqual(fastTanh(-.greatestFiniteMagnitude), -1)
        XCTAssertEqual(fastSigmoid(-.greatestFiniteMagnitude), 0, accuracy: 1e-37)
    }
}
