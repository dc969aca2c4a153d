// API key generation and hashing.
import APIKeys
import XCTest

final class APIKeySecretTests: XCTestCase {
    func testKeysAreRandomAndWellFormed() {
        let keys = (0..<50).map { _ in APIKeySecret.generate() }
        XCTAssertEqual(Set(keys).count, keys.count, "no repeats")
        for key in keys {
            XCTAssertTrue(key.hasPrefix("dsk_"), key)
            XCTAssertEqual(key.count, 4 + 64, key)
            XCTAssertTrue(key.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase }, key)
        }
    }

    func testHashIsSHA256OfTheKeysBytes() {
        // FIPS 180-2 test vector for "abc".
        XCTAssertEqual(APIKeySecret.sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(APIKeySecret.sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(APIKeySecret.sha256Hex(String(repeating: "a", count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        XCTAssertNotEqual(APIKeySecret.sha256Hex("dsk_a"), APIKeySecret.sha256Hex("dsk_b"))
    }
}
