// The preview route against the real PostgreSQL, with a stand-in worker storing frames: each frame coloured
// on request from its stored float32 disparity as soon as its window is stored, on the scale of the frames
// stored so far (marked provisional, and widening as frames arrive), and equal to `color/NNNN.png` once the
// finishing step has run.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
import Media
import TestSupport
import XCTest
@testable import JobsAPI

final class PreviewRouteTests: StoreServerTestCase {
    override var schemaPrefix: String { "preview_" }

    /// Frame `index` of 5×4 pixels: values `low ... high` in equal steps, row-major.
    private func frame(_ index: Int, low: Float, high: Float) -> (result: FrameResult, values: [Float]) {
        let values = (0..<20).map { low + (high - low) * Float($0) / 19 }
        return (FrameResult(frameIndex: index, name: String(format: "%04d", index), height: 4, width: 5,
                            disparity: values.withUnsafeBytes { Data($0) }, disparityPNG: Data("png\(index)".utf8),
                            depthPNG: nil, minDisparity: low, maxDisparity: high), values)
    }

    private func colored(_ values: [Float], lower: Float, upper: Float) throws -> RGBImage {
        ColorMap.colorize(values[...], width: 5, height: 4, scale: ColorMap.Scale(lower: lower, upper: upper))
    }

    func testPreviewsFollowTheStoredFramesAndEqualTheColourFramesOnceFinished() throws {
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: 3, width: 5, height: 4))
        form.file("right", filename: "right.tar", frameTar(count: 3, width: 5, height: 4, seed: 9))
        form.field("kernel_size", "2")
        let connection = try client()
        try connection.send(form.request())
        let submitted = try connection.response()
        XCTAssertEqual(submitted.status, 202, submitted.text)
        let base = "/jobs/\(try XCTUnwrap(submitted.json["id"] as? String))"

        let queued = try get("\(base)/preview/0000.png")
        XCTAssertEqual(queued.errorCode, "not_ready", queued.text)
        XCTAssertNotNil(queued.header("Retry-After"))

        let frames = [frame(0, low: 1, high: 4), frame(1, low: 0, high: 8), frame(2, low: 2, high: 3)]
        let queue = WorkerQueue(url: databaseURL)
        defer { queue.disconnect() }
        var window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(window.window.resultFrames, 0..<1)
        XCTAssertTrue(try queue.succeed(window, frames: [frames[0].result]))

        // One frame stored: its preview on its own range, provisional; the others not ready.
        let first = try get("\(base)/preview/0000.png")
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(first.header("Content-Type"), "image/png")
        XCTAssertEqual(first.header("Preview-Scale"), "provisional; lower=1.0; upper=4.0")
        XCTAssertEqual(first.header("Cache-Control"), "no-store")
        XCTAssertEqual(try PNG.decodeRGB(Data(first.body)), try colored(frames[0].values, lower: 1, upper: 4))
        XCTAssertEqual(try get("\(base)/preview/0001.png").errorCode, "not_ready")

        // A second frame with a wider range widens the scale the first is drawn on.
        window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(window.window.resultFrames, 1..<2)
        XCTAssertTrue(try queue.succeed(window, frames: [frames[1].result]))
        let widened = try get("\(base)/preview/0000.png")
        XCTAssertEqual(widened.header("Preview-Scale"), "provisional; lower=0.0; upper=8.0")
        XCTAssertEqual(try PNG.decodeRGB(Data(widened.body)), try colored(frames[0].values, lower: 0, upper: 8))
        XCTAssertNotEqual(widened.body, first.body)

        // Every window stored, then the finishing step colours each frame as the worker does, on the same scale.
        window = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(window.window.resultFrames, 2..<3)
        XCTAssertTrue(try queue.succeed(window, frames: [frames[2].result]))
        XCTAssertEqual(try get("\(base)/preview/0002.png").header("Preview-Scale"), "provisional; lower=0.0; upper=8.0",
                       "provisional until the finishing step has run")
        let step = try XCTUnwrap(try queue.claim(workerId: "w", leaseSeconds: 30))
        XCTAssertEqual(step.kind, .finish)
        let range = try XCTUnwrap(try queue.disparityRange(of: step))
        let scale = FrameRendering.scale(lower: range.lowerBound, upper: range.upperBound)
        for (index, frame) in frames.enumerated() {
            let rendered = try FrameRendering.colorAndVideo(frame.values[...], width: 5, height: 4, scale: scale, left: nil)
            XCTAssertTrue(try queue.storeRendered(step, frame: index, RenderedFrame(colorPNG: rendered.color, videoPNG: nil)))
        }
        XCTAssertTrue(try queue.finish(step))
        XCTAssertEqual(try get(base).json["status"] as? String, "succeeded")
        for index in 0..<3 {
            let name = String(format: "%04d", index)
            let preview = try get("\(base)/preview/\(name).png")
            XCTAssertEqual(preview.header("Preview-Scale"), "final; lower=0.0; upper=8.0", name)
            XCTAssertEqual(preview.body, try get("\(base)/color/\(name).png").body, "\(name): the final preview is the colour frame")
        }

        let unknownFrame = try get("\(base)/preview/0007.png")
        XCTAssertEqual(unknownFrame.status, 404, unknownFrame.text)
        XCTAssertEqual(try get("/jobs/\(UUID().uuidString.lowercased())/preview/0000.png").status, 404)
        XCTAssertEqual(try exchange("DELETE \(base)/preview/0000.png HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").0.status, 405)
    }
}
