// A small thread-safe pool of libpq connections for the API side, where many requests share a process.
import Foundation

/// Hands out idle connections, opening new ones on demand and keeping at most `maxIdle` around.
///
/// A session can die under a statement (a database restart, a dropped network). What happens next depends on
/// whether running the work again is safe, which only the caller knows, so each call says it:
/// - `withConnection(.idempotent)`: reads, and writes whose second run changes nothing; run once more on a
///   fresh connection.
/// - `withConnection(.once)`: a write that must not run twice; the loss is thrown.
/// - `transaction`: re-run on a fresh connection, telling the body it is a re-run, because a loss at COMMIT
///   leaves unknown whether the first run committed. The body must then recognise its own committed work
///   (`JobStore.enqueue` looks for the job id it chose) before doing anything.
final class ConnectionPool: @unchecked Sendable {
    /// Whether a body may run a second time after its session died under it.
    enum Rerun {
        case idempotent
        case once
    }

    /// Pauses between the runs of a transaction whose session died: the first re-run at once (most losses
    /// are one stale session), then giving a restarting server a few seconds.
    static let transactionRetryDelays: [Double] = [0, 0.2, 1, 3]

    private let url: String
    private let maxIdle: Int
    private let lock = NSLock()
    private var idle: [PostgresConnection] = []

    init(url: String, maxIdle: Int = 8) {
        self.url = url
        self.maxIdle = maxIdle
    }

    func withConnection<R>(_ rerun: Rerun = .idempotent, _ body: (PostgresConnection) throws -> R) throws -> R {
        do {
            return try attempt(body)
        } catch let error as PostgresError where error.isConnectionLoss && rerun == .idempotent {
            dropIdle()
            return try attempt(body)
        }
    }

    /// Runs `body` between BEGIN and COMMIT (`PostgresConnection.transaction`), rolling back when it throws.
    /// After a lost session the whole transaction runs again on a fresh connection with `isRerun` true, up
    /// to `transactionRetryDelays.count` more times; the body must then first look for its own committed
    /// work and return that instead of doing it twice.
    func transaction<R>(_ body: (_ connection: PostgresConnection, _ isRerun: Bool) throws -> R) throws -> R {
        var delays = Self.transactionRetryDelays[...]
        var isRerun = false
        while true {
            do {
                return try attempt { connection in try connection.transaction { try body(connection, isRerun) } }
            } catch let error as PostgresError where error.isConnectionLoss {
                guard let delay = delays.popFirst() else { throw error }
                dropIdle()
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                isRerun = true
            }
        }
    }

    /// Every idle connection predates the failure and is likely dead too.
    private func dropIdle() {
        lock.withLock { idle.removeAll() }
    }

    private func attempt<R>(_ body: (PostgresConnection) throws -> R) throws -> R {
        let connection = try checkOut()
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

    /// An idle connection that still looks alive, else a new one.
    private func checkOut() throws -> PostgresConnection {
        while let reused = lock.withLock({ idle.popLast() }) {
            if reused.isAliveWhenIdle { return reused }
        }
        return try PostgresConnection(url: url)
    }

    private func release(_ connection: PostgresConnection) {
        lock.withLock { if idle.count < maxIdle { idle.append(connection) } }
    }
}
