// HMAC-SHA256 through OpenSSL's libcrypto (EVP_Q_mac, OpenSSL 3): what signed result URLs are made with,
// and a comparison that takes the same time wherever two MACs first differ.
import COpenSSL

/// HMAC-SHA256 (RFC 2104) of a message under a secret key.
public enum HMACSHA256 {
    /// The 32-byte MAC of `message` under `key`.
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let status = key.withUnsafeBufferPointer { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                out.withUnsafeMutableBufferPointer { outBytes in
                    EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, keyBytes.baseAddress, keyBytes.count,
                              messageBytes.baseAddress, messageBytes.count,
                              outBytes.baseAddress, outBytes.count, &length)
                }
            }
        }
        // Fails only when libcrypto lacks HMAC or SHA-256 (a broken install): nothing a caller could recover from.
        precondition(status != nil && length == 32, "libcrypto: HMAC-SHA256 is unavailable")
        return out
    }

    /// Whether `a` and `b` are equal, in time that depends on their lengths only, so that a forger cannot
    /// learn a correct MAC byte by byte from response times.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
