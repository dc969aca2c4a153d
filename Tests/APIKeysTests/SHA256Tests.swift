// SHA-256 through libcrypto: the digest of stored API keys and of upload payloads.
import APIKeys
import XCTest

final class SHA256Tests: XCTestCase {
    private func hex(_ text: String, splitAt: Int? = nil) -> String {
        let hasher = SHA256()
        let bytes = Array(text.utf8)
        if let splitAt {
            hasher.update(bytes[..<splitAt])
            hasher.update(bytes[splitAt...])
        } else {
            hasher.update(bytes)
        }
        return hasher.finalizeHex()
    }

    func testKnownVectors() {
        // FIPS 180-2 (and 180-4) examples, through libcrypto.
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        XCTAssertEqual(hex(long), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(hex(long, splitAt: 13), hex(long))
        XCTAssertEqual(hex(String(repeating: "a", count: 1_000_000)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// The million-'a' vector fed in uneven pieces, as an upload arrives: a binding that dropped or
    /// repeated bytes at piece boundaries, or reset its context, would give another digest.
    func testIncrementalMillionA() {
        let hasher = SHA256()
        var remaining = 1_000_000
        var piece = 1
        while remaining > 0 {
            let size = min(piece, remaining)
            hasher.update(ArraySlice(repeating: UInt8(ascii: "a"), count: size))
            remaining -= size
            piece = piece * 3 + 1
        }
        XCTAssertEqual(hasher.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
