// SHA-256 through OpenSSL's libcrypto (the EVP digest API), computed incrementally while an upload streams
// in. It hashes API keys for storage and identifies an upload's payload for idempotent retries.
import COpenSSL

/// An incremental SHA-256 hasher over one libcrypto digest context. Not thread-safe; one per stream.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        // Both calls fail only when memory is exhausted or libcrypto lacks SHA-256 (a broken install):
        // nothing a caller could recover from.
        guard let context = EVP_MD_CTX_new() else { preconditionFailure("libcrypto: EVP_MD_CTX_new failed") }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(context)
            preconditionFailure("libcrypto: SHA-256 is unavailable")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let done = bytes.withContiguousStorageIfAvailable { buffer in
            EVP_DigestUpdate(context, buffer.baseAddress, buffer.count)
        }
        let status = done ?? Array(bytes).withUnsafeBufferPointer { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        precondition(status == 1, "libcrypto: EVP_DigestUpdate failed")
    }

    /// The digest in lowercase hex; the hasher must not be used afterwards.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &digest, &length) == 1 && length == 32, "libcrypto: EVP_DigestFinal_ex failed")
        let hexDigits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest.prefix(32) {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
