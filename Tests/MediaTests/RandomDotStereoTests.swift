// The demo clip: its frames, and dots that shift between the views by exactly the disparity it states.
import Media
import XCTest

final class RandomDotStereoTests: XCTestCase {
    private let clip = RandomDotStereo.demo

    private func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        let at = (y * image.width + x) * 3
        return Array(image.pixels[at..<(at + 3)])
    }

    func testTheDemoClipHasItsFramesAndSize() {
        XCTAssertEqual(clip.frames, 5)
        for t in 0..<clip.frames {
            for image in [clip.left(frame: t), clip.right(frame: t)] {
                XCTAssertEqual(image.width, 128)
                XCTAssertEqual(image.height, 64)
                XCTAssertEqual(image.pixels.count, 128 * 64 * 3)
            }
        }
        XCTAssertNotEqual(clip.left(frame: 0), clip.right(frame: 0))
        XCTAssertNotEqual(clip.left(frame: 0), clip.left(frame: 1), "the clip moves")
    }

    func testTheDisparityMapIsTheSquareOverTheBackground() {
        for t in 0..<clip.frames {
            var counts: [Int: Int] = [:]
            for y in 0..<clip.height {
                for x in 0..<clip.width { counts[clip.disparity(x: x, y: y, frame: t), default: 0] += 1 }
            }
            XCTAssertEqual(counts, [12: 32 * 32, 4: 128 * 64 - 32 * 32], "frame \(t)")
            XCTAssertEqual(clip.squareColumns(frame: t).lowerBound, 40 + 4 * t)
        }
        XCTAssertEqual(clip.squareRows, 16..<48)
    }

    /// Every left pixel that the right camera sees is in the right frame `d` columns to the left; the pixels
    /// it cannot see are the background strip beside the square's left edge that the square hides
    /// (squareDisparity - backgroundDisparity columns) and the first `d` columns, outside the right frame.
    func testDotsShiftByTheStatedDisparity() {
        for t in 0..<clip.frames {
            let left = clip.left(frame: t), right = clip.right(frame: t)
            var matched = 0, hidden = 0
            for y in 0..<clip.height {
                for x in 0..<clip.width {
                    let d = clip.disparity(x: x, y: y, frame: t)
                    guard x - d >= 0 else { continue }
                    let squareCoversIt = d == clip.backgroundDisparity && clip.squareRows.contains(y)
                        && clip.squareColumns(frame: t).contains(x - d + clip.squareDisparity)
                    if squareCoversIt {
                        hidden += 1
                        XCTAssertNotEqual(pixel(left, x, y), pixel(right, x - d, y), "hidden (\(x), \(y)) of frame \(t)")
                    } else {
                        matched += 1
                        XCTAssertEqual(pixel(left, x, y), pixel(right, x - d, y), "(\(x), \(y)) of frame \(t), disparity \(d)")
                    }
                }
            }
            XCTAssertEqual(hidden, 32 * (12 - 4), "frame \(t)")
            XCTAssertEqual(matched, 128 * 64 - 64 * 4 - 32 * (12 - 4), "frame \(t)")
        }
    }

    /// The dots are random enough that no other shift explains the views: one pixel off matches almost nowhere.
    func testNoOtherShiftMatches() {
        let left = clip.left(frame: 2), right = clip.right(frame: 2)
        for offset in [-1, 1] {
            var same = 0, compared = 0
            for y in 0..<clip.height {
                for x in 20..<clip.width {
                    compared += 1
                    if pixel(left, x, y) == pixel(right, x - clip.disparity(x: x, y: y, frame: 2) + offset, y) { same += 1 }
                }
            }
            XCTAssertLessThan(same, compared / 100, "shift off by \(offset)")
        }
    }

    func testTheBackgroundPansAndTheSquareMovesBetweenFrames() {
        let first = clip.left(frame: 0), second = clip.left(frame: 1)
        // Outside the square's rows: frame 1 is frame 0 scrolled left by backgroundPan columns.
        for y in 0..<clip.squareRows.lowerBound {
            for x in 0..<(clip.width - 2) { XCTAssertEqual(pixel(second, x, y), pixel(first, x + 2, y)) }
        }
        // The square's texture moves with it, 4 columns right.
        let columns = clip.squareColumns(frame: 0)
        for y in clip.squareRows {
            for x in columns { XCTAssertEqual(pixel(second, x + 4, y), pixel(first, x, y)) }
        }
    }
}
