// TarReader.readContentChunk: one entry's content in pieces, plain and gzipped, and a truncated entry.
import Foundation
@testable import Media
import XCTest

final class TarChunkTests: XCTestCase {
    func testChunksConcatenateToTheEntryInBothForms() throws {
        let big = TarTests.bytes(200_003, seed: 7)
        let writer = TarWriter()
        try writer.addFile(path: "a.bin", contents: Data([1, 2, 3]))
        try writer.addFile(path: "dir/big.bin", contents: big)
        try writer.addFile(path: "after.txt", contents: Data("after".utf8))
        try writer.finish()
        for archive in [writer.data, try GzipCompression.compress(writer.data)] {
            let reader = try TarReader(data: archive)
            _ = try reader.next()
            let entry = try XCTUnwrap(try reader.next())
            XCTAssertEqual(entry.path, "dir/big.bin")
            var collected = Data()
            var sizes: [Int] = []
            while true {
                let chunk = try reader.readContentChunk(maxBytes: 65_536)
                if chunk.isEmpty { break }
                sizes.append(chunk.count)
                collected.append(chunk)
            }
            XCTAssertEqual(collected, big)
            XCTAssertEqual(sizes, [65_536, 65_536, 65_536, 200_003 - 3 * 65_536])
            // The reader carries on with the next entry after a fully chunked one.
            XCTAssertEqual(try reader.next()?.path, "after.txt")
            XCTAssertEqual(try reader.readContents(), Data("after".utf8))
        }
    }

    func testAPartlyChunkedEntryIsSkippedAndATruncatedOneRefused() throws {
        let writer = TarWriter()
        try writer.addFile(path: "one.bin", contents: TarTests.bytes(5_000))
        try writer.addFile(path: "two.bin", contents: Data("two".utf8))
        try writer.finish()
        let reader = try TarReader(data: writer.data)
        _ = try reader.next()
        XCTAssertEqual(try reader.readContentChunk(maxBytes: 100).count, 100)
        XCTAssertEqual(try reader.next()?.path, "two.bin")

        let cut = try TarReader(data: writer.data.prefix(512 + 1_000))
        _ = try cut.next()
        XCTAssertEqual(try cut.readContentChunk(maxBytes: 600).count, 600)
        XCTAssertThrowsError(try cut.readContentChunk(maxBytes: 600)) { error in
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }
    }
}
