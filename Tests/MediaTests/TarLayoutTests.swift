import Foundation
import Media
import TestSupport
import XCTest

/// The layout of a tar known from sizes alone gives exactly the bytes `TarWriter` writes, whole or by range.
final class TarLayoutTests: XCTestCase {
    func testLayoutBytesEqualTheWritersWholeAndInEveryRange() throws {
        var generator = SeededGenerator(seed: 13)
        let files: [(path: String, data: Data)] = [
            ("disparity.npy", Data((0..<1500).map { _ in UInt8.random(in: 0...255, using: &generator) })),
            ("disparity/0000.png", Data(repeating: 7, count: 512)),
            // Over 100 bytes, split into ustar's prefix and name fields.
            ("color/" + String(repeating: "p", count: 60) + "/" + String(repeating: "n", count: 60) + ".png", Data([1, 2, 3])),
            ("video/0000.png", Data()),
        ]
        let writer = TarWriter()
        for file in files { try writer.addFile(path: file.path, contents: file.data) }
        try writer.finish()
        let expected = writer.data
        let layout = try XCTUnwrap(TarLayout(files: files.map { ($0.path, $0.data.count) }))
        XCTAssertEqual(layout.size, expected.count)
        func bytes(_ range: Range<Int>) throws -> Data {
            var out = Data()
            try layout.write(range, to: { out.append($0) }) { member, within in
                let data = files.first { $0.path == member.path }!.data
                out.append(data.subdata(in: within))
            }
            return out
        }
        XCTAssertEqual(try bytes(0..<layout.size), expected)
        for _ in 0..<200 {
            let a = Int.random(in: 0...layout.size, using: &generator), b = Int.random(in: 0...layout.size, using: &generator)
            let range = min(a, b)..<max(a, b)
            XCTAssertEqual(try bytes(range), expected.subdata(in: range), "\(range)")
        }
        XCTAssertNil(TarLayout(files: [(String(repeating: "x", count: 300), 1)]), "a path that needs a long-name entry")
    }
}
