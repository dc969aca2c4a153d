// Decompression amplification against the real server and PostgreSQL: a small tar.gz whose PNG frames are
// each followed by zeros, as an attacker pads them, must be refused with a 4xx while it inflates, leaving no
// job, no stored frame and no temp file; within the limits the same frames are stored as the PNGs they are.
import Foundation
import HTTPTestSupport
import HTTPTransport
import JobQueue
@testable import Media
import TestSupport
import XCTest
@testable import JobsAPI

final class AmplifiedUploadTests: StoreServerTestCase {
    /// The upload limit of this server: 8 MiB, for the body and for what its archives inflate to.
    private let limit = 8 << 20

    override var schemaPrefix: String { "http_" }

    override func setUpWithError() throws {
        apiConfiguration.maxUploadBytes = limit
        try super.setUpWithError()
    }

    override func startServer() throws {
        let backend = JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader(maxInflatedBytes: limit))
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration))
    }

    /// `frames` 8x8 PNGs, each followed by `pad` zero bytes, as a gzipped tar; and the PNGs.
    private func paddedTarGz(frames: Int, pad: Int, seed: UInt8) throws -> (archive: [UInt8], pngs: [[UInt8]]) {
        let pngs = (0..<frames).map { tinyPNG(width: 8, height: 8, seed: seed &+ UInt8($0)) }
        let archive = tar(pngs.enumerated().map { (String(format: "%04d.png", $0), $1 + [UInt8](repeating: 0, count: pad)) })
        return ([UInt8](try GzipCompression.compress(Data(archive), level: 9)), pngs)
    }

    private func submit(_ left: [UInt8], _ right: [UInt8]) throws -> RawResponse {
        var form = MultipartBody()
        form.file("left", filename: "left.tar.gz", left)
        form.file("right", filename: "right.tar.gz", right)
        form.field("iters", "2")
        let connection = try client()
        try connection.send(form.request())
        return try connection.response()
    }

    private func assertNothingLeft(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try count("jobs"), 0, "no job", file: file, line: line)
        XCTAssertEqual(try count("job_inputs"), 0, "no stored frame", file: file, line: line)
        // The server answers after the handler has released the upload, so its files are gone by now.
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: uploads.path)) ?? []
        XCTAssertEqual(left, [], "no upload folder, tar or frame store", file: file, line: line)
    }

    /// The upload scaled to this server: 16 frames padded to 1 MiB each, 20 KB on the wire and 16 MiB
    /// inflated per side, against an 8 MiB limit. Refused (413) at the entry that would pass the limit, before it is
    /// inflated, and in any case never more than a read-ahead past it.
    func testPaddedTarGzIsRefusedBeforeItInflatesPastTheLimit() throws {
        let (left, _) = try paddedTarGz(frames: 16, pad: (1 << 20) - 300, seed: 0)
        let (right, _) = try paddedTarGz(frames: 16, pad: (1 << 20) - 300, seed: 100)
        XCTAssertLessThan(left.count + right.count, 1 << 20, "small on the wire")
        let response = try submit(left, right)
        XCTAssertEqual(response.status, 413, response.text)
        XCTAssertEqual(response.errorCode, "inflated_too_large", response.text)
        XCTAssertTrue(response.text.contains("left inflates to more than the limit of \(limit) bytes"), response.text)
        try assertNothingLeft()
    }

    /// Under a limit too large to stop it, the ratio does: 24 MiB out of some 25 KB is refused once 16 MiB are out.
    func testAbsurdRatioIsRefusedWhateverTheLimit() throws {
        server.shutdown()
        server.wait()
        let large = 1 << 30
        let backend = JobStoreBackend(store: try JobStore(url: databaseURL), loader: MediaFrameLoader(maxInflatedBytes: large))
        apiConfiguration.maxUploadBytes = large
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration))
        let (left, _) = try paddedTarGz(frames: 24, pad: (1 << 20) - 300, seed: 0)
        let response = try submit(left, left)
        XCTAssertEqual(response.status, 413, response.text)
        XCTAssertEqual(response.errorCode, "compression_ratio_too_high", response.text)
        try assertNothingLeft()
    }

    /// Padding that stays inside the limits is accepted, and dropped: each stored frame is its PNG exactly.
    func testFramesAreStoredThroughTheirEndOnly() throws {
        let (left, leftPNGs) = try paddedTarGz(frames: 3, pad: 20_000, seed: 0)
        let (right, rightPNGs) = try paddedTarGz(frames: 3, pad: 20_000, seed: 100)
        let response = try submit(left, right)
        XCTAssertEqual(response.status, 202, response.text)
        let claimed = try XCTUnwrap(try WorkerQueue(url: databaseURL).claim(workerId: "test", leaseSeconds: 30))
        let inputs = try WorkerQueue(url: databaseURL).inputs(of: claimed)
        XCTAssertEqual(inputs.map { [UInt8]($0.left) }, leftPNGs)
        XCTAssertEqual(inputs.map { [UInt8]($0.right) }, rightPNGs)
        XCTAssertEqual((try? FileManager.default.subpathsOfDirectory(atPath: uploads.path)) ?? [], [])
    }

    /// A loader that holds the upload until the test has hung up, waits for the server to see it, then runs
    /// the real loader, which must stop at its first entry.
    final class HangUpLoader: FrameLoader, @unchecked Sendable {
        let started = DispatchSemaphore(value: 0)
        let hungUp = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        var outcome: Error?

        func loadFrames(left: URL, right: URL, limits: FrameLimits) throws -> UploadedFrames {
            try MediaFrameLoader().loadFrames(left: left, right: right, limits: limits)
        }

        func loadFrames(left: URL, right: URL, limits: FrameLimits, clientGone: @escaping @Sendable () -> Bool) throws -> UploadedFrames {
            started.signal()
            hungUp.wait()
            // The event to wait for is the FIN reaching the server's socket; it follows the test's shutdown().
            while !clientGone() { sched_yield() }
            do {
                return try MediaFrameLoader().loadFrames(left: left, right: right, limits: limits, clientGone: clientGone)
            } catch {
                outcome = error
                finished.signal()
                throw error
            }
        }
    }

    /// A client that hangs up while its upload is validated costs no more decoding, and leaves nothing.
    func testWorkStopsForAClientThatHasGone() throws {
        server.shutdown()
        server.wait()
        let loader = HangUpLoader()
        let backend = JobStoreBackend(store: try JobStore(url: databaseURL), loader: loader)
        try serve(JobsHTTPApplication(backend: backend, configuration: apiConfiguration))
        var form = MultipartBody()
        form.file("left", filename: "left.tar", frameTar(count: 3))
        form.file("right", filename: "right.tar", frameTar(count: 3, seed: 100))
        let connection = try client()
        try connection.send(form.request())
        loader.started.wait()
        shutdown(connection.fd, Int32(SHUT_RDWR))
        loader.hungUp.signal()
        loader.finished.wait()
        XCTAssertEqual((loader.outcome as? APIError)?.code, "client_gone", "\(String(describing: loader.outcome))")
        // wait() returns once every connection is closed, so the handler has returned and released the upload.
        server.shutdown()
        server.wait()
        server = nil
        try assertNothingLeft()
    }
}
