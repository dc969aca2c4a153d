// The one secret signed result URLs are made with (migration 0008), and the key lookup a signed URL needs:
// such a URL names the key it was issued to, which must still be in force when it is used.
import Foundation

extension JobStore {
    /// The database's URL-signing secret, made by `generate` (at least 32 random bytes) and stored when
    /// there is none yet. Every server of one database gets the same bytes: the first insert wins.
    public func urlSigningSecret(generate: () -> [UInt8]) throws -> [UInt8] {
        try pool.withConnection { connection in
            if let row = try connection.execute(Queries.urlSigningSecret, binaryResults: true).first {
                return [UInt8](try row.data(0))
            }
            let fresh = generate()
            precondition(fresh.count >= 32, "a URL-signing secret has at least 256 bits")
            try connection.execute(Queries.insertURLSigningSecret, [.bytes(Data(fresh))])
            guard let row = try connection.execute(Queries.urlSigningSecret, binaryResults: true).first else {
                throw PostgresError.decoding("the URL-signing secret vanished after it was stored")
            }
            return [UInt8](try row.data(0))
        }
    }
}

extension APIKeyStore {
    /// The key with this id, revoked or not; nil for an unknown id.
    public func key(id: UUID) throws -> APIKeyRecord? {
        try pool.withConnection { connection in
            try connection.execute(Queries.apiKeyByID, [.uuid(id)]).first.map(Queries.decodeAPIKey)
        }
    }
}

extension Queries {
    static let urlSigningSecret = Query(name: "url signing secret", sql: "SELECT secret FROM url_signing_secret")
    /// $1 the secret. A concurrent first start may have stored one already: it is kept.
    static let insertURLSigningSecret = Query(name: "insert url signing secret", sql: """
        INSERT INTO url_signing_secret (secret) VALUES ($1) ON CONFLICT (only_row) DO NOTHING
        """)
    static let apiKeyByID = Query(name: "api key by id", sql: "SELECT \(apiKeyColumns) FROM api_keys WHERE id = $1")
}
