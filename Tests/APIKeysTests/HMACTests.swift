// HMAC-SHA256 through libcrypto against RFC 4231's published test vectors, and the comparison signed URLs use.
import APIKeys
import XCTest

final class HMACTests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func testRFC4231Vectors() {
        // Test case 1: a 20-byte key of 0x0b, "Hi There".
        XCTAssertEqual(hex(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2: key "Jefe".
        XCTAssertEqual(hex(HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a key longer than the block (131 bytes of 0xaa), which HMAC hashes first.
        XCTAssertEqual(hex(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131),
                                          message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    func testConstantTimeEqualCompares() {
        XCTAssertTrue(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertTrue(HMACSHA256.constantTimeEqual([], []))
    }
}
