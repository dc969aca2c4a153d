// A small thread-safe pool of libpq connections for the API side, where many requests share a process.
import Foundation

/// Hands out idle connections, opening new ones on demand and keeping at most `maxIdle` around.
/// A statement that fails because the session died is retried once on a fresh connection, so the API
/// recovers by itself after a database restart.
final class ConnectionPool: @unchecked Sendable {
    private let url: String
    private let maxIdle: Int
    private let lock = NSLock()
    private var idle: [PostgresConnection] = []

    init(url: String, maxIdle: Int = 8) {
        self.url = url
        self.maxIdle = maxIdle
    }

    func withConnection<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        do {
            return try attempt(body)
        } catch let error as PostgresError where error.isConnectionLoss {
            // Every idle connection predates the failure and is likely dead too.
            lock.withLock { idle.removeAll() }
            return try attempt(body)
        }
    }

    private func attempt<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        let reused = lock.withLock { idle.popLast() }
        let connection = try reused ?? PostgresConnection(url: url)
        let result: R
        do {
            result = try body(connection)
        } catch {
            if connection.isHealthy { release(connection) }
            throw error
        }
        release(connection)
        return result
    }

    private func release(_ connection: PostgresConnection) {
        lock.withLock { if idle.count < maxIdle { idle.append(connection) } }
    }

    /// Runs `body` between BEGIN and COMMIT, rolling back when it throws.
    func transaction<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        try withConnection { connection in
            try connection.execute(Queries.begin)
            do {
                let result = try body(connection)
                try connection.execute(Queries.commit)
                return result
            } catch {
                if connection.isHealthy { _ = try? connection.execute(Queries.rollback) }
                throw error
            }
        }
    }
}
