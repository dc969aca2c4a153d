// A test case with its own migrated schema in the test PostgreSQL.
import Foundation
import JobQueue
import TestSupport
import XCTest

class QueueTestCase: XCTestCase {
    var url = ""
    var schema = ""

    override func setUpWithError() throws {
        (url, schema) = try TestDatabase.makeSchema(String(describing: type(of: self)) + "_" + name.filter(\.isLetter).suffix(20))
        try Migrator(url: url).run()
    }

    override func tearDown() {
        TestDatabase.dropSchema(schema)
    }

    /// A tiny valid-looking frame: the queue stores bytes and never decodes them.
    func frames(_ count: Int, size: Int = 16) -> [InputFrame] {
        (0..<count).map { index in
            InputFrame(index: index, name: String(format: "%04d.png", index),
                       left: Data((0..<size).map { UInt8(($0 + index) & 0xFF) }),
                       right: Data((0..<size).map { UInt8(($0 * 3 + index) & 0xFF) }))
        }
    }

    func enqueue(_ store: JobStore, frames count: Int = 2, key: String? = nil, digest: String? = nil) throws -> JobRecord {
        try store.enqueue(parameters: JobParameters(iters: 2, kernelSize: 3), frames: frames(count),
                          idempotencyKey: key, payloadDigest: digest).job
    }

    /// Stand-in results for a window's frames: each frame's disparity is its index everywhere.
    func results(_ window: ClaimedWindow, height: Int = 2, width: Int = 3) -> [FrameResult] {
        window.window.resultFrames.map { frame in
            let values = [Float](repeating: Float(frame), count: height * width)
            return FrameResult(frameIndex: frame, name: String(format: "%04d", frame), height: height, width: width,
                               disparity: values.withUnsafeBytes { Data($0) }, disparityPNG: Data("png \(frame)".utf8),
                               depthPNG: nil, minDisparity: Float(frame), maxDisparity: Float(frame))
        }
    }

    /// Runs every window and the finishing step of whatever is claimable until nothing is, as one worker.
    /// Returns the windows it ran.
    @discardableResult
    func runAll(_ queue: WorkerQueue, worker: String = "w") throws -> [ClaimedWindow] {
        var ran: [ClaimedWindow] = []
        while let window = try queue.claim(workerId: worker, leaseSeconds: 30) {
            ran.append(window)
            switch window.kind {
            case .window:
                XCTAssertTrue(try queue.succeed(window, frames: results(window)))
            case .finish:
                for frame in try queue.framesToRender(window) {
                    XCTAssertTrue(try queue.storeRendered(window, frame: frame, RenderedFrame(colorPNG: Data("color \(frame)".utf8), videoPNG: nil)))
                }
                XCTAssertTrue(try queue.finish(window))
            case .prepare:
                // A video job's frames, as if decoded: the tests here queue frames, which have none.
                XCTAssertTrue(try queue.finishPreparing(window))
            }
        }
        return ran
    }
}
