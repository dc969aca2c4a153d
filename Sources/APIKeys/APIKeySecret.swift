// Making API keys and hashing presented ones: the one place that sees a key in the clear besides the client.
// `dynstereo keys` and the API server both use it; neither needs the other.

/// API keys are `dsk_` and 64 hex digits (256 random bits from the system's CSPRNG); the database keeps
/// only their SHA-256 in hex, so a leaked table cannot be replayed as keys.
public enum APIKeySecret {
    static let prefix = "dsk_"

    /// A new random key, to be shown to its owner once.
    public static func generate() -> String {
        // SystemRandomNumberGenerator reads getrandom(2) on Linux: suitable for secrets.
        var generator = SystemRandomNumberGenerator()
        let digits = (0..<32).map { _ -> String in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte, radix: 16).leftPadded(to: 2)
        }
        return prefix + digits.joined()
    }

    /// The stored form of a key: SHA-256 of its UTF-8 bytes in lowercase hex.
    public static func sha256Hex(_ key: String) -> String {
        let hasher = SHA256()
        hasher.update(Array(key.utf8))
        return hasher.finalizeHex()
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
