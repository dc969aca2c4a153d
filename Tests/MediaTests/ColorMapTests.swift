// The inferno colour map and the one-scale-per-video rule.
import Foundation
@testable import Media
import XCTest

final class ColorMapTests: XCTestCase {
    /// Relative luminance (Rec. 709 weights) in 0...255.
    static func luminance(_ c: (UInt8, UInt8, UInt8)) -> Double {
        0.2126 * Double(c.0) + 0.7152 * Double(c.1) + 0.0722 * Double(c.2)
    }

    func testEndsMatchThePublishedTable() {
        // Entries 0 and 255 of matplotlib's inferno, x255 and rounded.
        XCTAssertTrue(ColorMap.inferno(0) == (0, 0, 4))
        XCTAssertTrue(ColorMap.inferno(1) == (252, 255, 164))
        XCTAssertTrue(ColorMap.inferno(-3) == ColorMap.inferno(0))
        XCTAssertTrue(ColorMap.inferno(7) == ColorMap.inferno(1))
        XCTAssertTrue(ColorMap.inferno(.nan) == ColorMap.inferno(0))
    }

    func testInteriorStaysNearThePublishedTable() {
        // Entries between the anchors (8, 100, 200, 232 of 256), x255. Tolerance 7/255: the anchors are 16
        // entries apart and blue dips between 192 and 208, the worst gap (about 6/255).
        let published: [(Int, Double, Double, Double)] = [
            (8, 3.569, 2.862, 18.325), (100, 144.293, 36.610, 104.106),
            (200, 251.418, 157.016, 6.526), (232, 244.960, 219.063, 75.993),
        ]
        for (index, r, g, b) in published {
            let c = ColorMap.inferno(Float(index) / 255)
            XCTAssertEqual(Double(c.0), r, accuracy: 7, "entry \(index)")
            XCTAssertEqual(Double(c.1), g, accuracy: 7, "entry \(index)")
            XCTAssertEqual(Double(c.2), b, accuracy: 7, "entry \(index)")
        }
    }

    func testLuminanceRisesMonotonically() {
        var previous = -1.0
        for step in 0...1000 {
            let value = Self.luminance(ColorMap.inferno(Float(step) / 1000))
            // Each channel is rounded to a byte (up to half a step either way), so two samples may differ by up to
            // one full luminance step (the weights sum to 1) against the trend, never more.
            XCTAssertGreaterThanOrEqual(value, previous - 1.0, "t = \(Double(step) / 1000)")
            previous = max(previous, value)
        }
        for step in 0..<20 {
            XCTAssertLessThan(Self.luminance(ColorMap.inferno(Float(step) / 20)),
                              Self.luminance(ColorMap.inferno(Float(step + 1) / 20)), "step \(step)")
        }
    }

    func testRobustScaleIgnoresOutliersAndNonFiniteValues() {
        var values = (0...100).map(Float.init)
        values += [1e6, -1e6, .nan, .infinity]
        let scale = ColorMap.robustScale(values)
        // 103 finite values: percentile 1 is element round(0.01 * 102) = 1, percentile 99 is element 101.
        XCTAssertEqual(scale, ColorMap.Scale(lower: 0, upper: 100))
        let tight = ColorMap.robustScale((0..<1000).map(Float.init) + [1e9])
        XCTAssertEqual(tight.lower, 10)
        XCTAssertEqual(tight.upper, 990)  // 1001 values: element round(0.99 * 1000)
        XCTAssertEqual(ColorMap.robustScale([]), ColorMap.Scale(lower: 0, upper: 1))
        XCTAssertEqual(ColorMap.robustScale([.nan]), ColorMap.Scale(lower: 0, upper: 1))
        XCTAssertEqual(ColorMap.Scale(lower: 3, upper: 3).position(3), 0.5)
        XCTAssertEqual(ColorMap.Scale(lower: 0, upper: 10).position(2.5), 0.25)
        XCTAssertEqual(ColorMap.Scale(lower: 0, upper: 10).position(20), 1)
    }

    func testColorizeUsesTheGivenScale() {
        let frame: [Float] = [0, 5, 10, 20]
        let image = ColorMap.colorize(frame[...], width: 2, height: 2, scale: ColorMap.Scale(lower: 0, upper: 10))
        XCTAssertEqual(image.width, 2)
        let pixel = { (i: Int) in (image.pixels[i * 3], image.pixels[i * 3 + 1], image.pixels[i * 3 + 2]) }
        XCTAssertTrue(pixel(0) == ColorMap.inferno(0))
        XCTAssertTrue(pixel(1) == ColorMap.inferno(128.0 / 255))  // 0.5 rounds to table entry 128
        XCTAssertTrue(pixel(2) == ColorMap.inferno(1))
        XCTAssertTrue(pixel(3) == ColorMap.inferno(1))
    }
}
