// A thin, synchronous libpq client: one connection, bound parameters only, rows decoded by column.
import CLibPQ
import Foundation

/// A value bound to a `$n` placeholder. Everything but bytes travels in text format with its type
/// inferred by the server (casts in the SQL make it explicit where inference is ambiguous); bytes
/// travel in binary format so frames and results are never hex-encoded on the wire.
public enum SQLValue: Sendable {
    case text(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case uuid(UUID)
    case bytes(Data)
    /// A one-dimensional `text[]`, e.g. a set of statuses for `status = ANY($n::text[])`.
    case textArray([String])
    case null

    /// `.null` for nil, otherwise the wrapped value.
    static func optional(_ value: Double?) -> SQLValue { value.map(SQLValue.double) ?? .null }
    static func optional(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    static func optional(_ value: UUID?) -> SQLValue { value.map(SQLValue.uuid) ?? .null }

    /// A time as integer microseconds since the Unix epoch (exact, and free of the session's DateStyle and
    /// time zone), read back by `Queries.now`; nil binds NULL, which `Queries.now` turns into `now()`.
    static func timestamp(_ date: Date?) -> SQLValue {
        date.map { .int(Int(($0.timeIntervalSince1970 * 1_000_000).rounded())) } ?? .null
    }

    /// The statuses as a `text[]`.
    static func statuses(_ statuses: [JobStatus]) -> SQLValue { .textArray(statuses.map(\.rawValue)) }

    /// The array literal PostgreSQL parses: every element double-quoted, with `"` and `\` escaped.
    static func arrayLiteral(_ elements: [String]) -> String {
        let quoted = elements.map { element -> String in
            var out = "\""
            for character in element {
                if character == "\"" || character == "\\" { out.append("\\") }
                out.append(character)
            }
            return out + "\""
        }
        return "{" + quoted.joined(separator: ",") + "}"
    }
}

/// What went wrong talking to PostgreSQL. `connection` means the session is gone and the caller should
/// reconnect (with backoff); `query` means the server rejected a statement and the session is still usable.
public enum PostgresError: Error, CustomStringConvertible, Sendable {
    case connection(String)
    case query(sqlState: String, message: String, query: String)
    case decoding(String)

    public var description: String {
        switch self {
        case let .connection(message): return "database connection failed: \(message)"
        case let .query(state, message, query): return "database error \(state) in \(query): \(message)"
        case let .decoding(message): return "unexpected database value: \(message)"
        }
    }

    /// True when retrying on a fresh connection may succeed.
    public var isConnectionLoss: Bool {
        switch self {
        case .connection: return true
        // Class 08 is connection exceptions; 57P01-57P03 are shutdown and "cannot connect now" (a server
        // still starting up after a restart).
        case let .query(state, _, _): return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
        case .decoding: return false
        }
    }
}

/// The rows of one statement's result, copied out of libpq so the `PGresult` can be freed at once.
struct QueryRows {
    /// Per row, per column: nil for SQL NULL, else the raw bytes in the requested format.
    let values: [[Data?]]
    let binary: Bool

    var count: Int { values.count }
    var first: Row? { values.first.map { Row(cells: $0, binary: binary) } }
    var rows: [Row] { values.map { Row(cells: $0, binary: binary) } }
}

/// One result row. Accessors throw `PostgresError.decoding` on a NULL or malformed cell, naming the column.
struct Row {
    let cells: [Data?]
    let binary: Bool

    func isNull(_ column: Int) -> Bool { cells[column] == nil }

    func data(_ column: Int) throws -> Data {
        guard let cell = cells[column] else { throw PostgresError.decoding("column \(column) is NULL") }
        return cell
    }

    func string(_ column: Int) throws -> String {
        let raw = try data(column)
        guard let text = String(data: raw, encoding: .utf8) else { throw PostgresError.decoding("column \(column) is not UTF-8") }
        return text
    }

    func optionalString(_ column: Int) throws -> String? { isNull(column) ? nil : try string(column) }

    func int(_ column: Int) throws -> Int {
        if binary {
            // Binary integers are big-endian int2/int4/int8.
            let raw = [UInt8](try data(column))
            guard [2, 4, 8].contains(raw.count) else { throw PostgresError.decoding("column \(column) is not an integer") }
            var value: Int64 = raw[0] & 0x80 != 0 ? -1 : 0
            for byte in raw { value = (value << 8) | Int64(byte) }
            return Int(value)
        }
        let text = try string(column)
        guard let value = Int(text) else { throw PostgresError.decoding("column \(column) '\(text)' is not an integer") }
        return value
    }

    func double(_ column: Int) throws -> Double {
        precondition(!binary, "floats are only decoded from text results")
        let text = try string(column)
        guard let value = Double(text) else { throw PostgresError.decoding("column \(column) '\(text)' is not a number") }
        return value
    }

    func optionalDouble(_ column: Int) throws -> Double? { isNull(column) ? nil : try double(column) }

    /// A one-dimensional array in PostgreSQL's text output, `{a,"b c",NULL}`: an element is quoted (with `\`
    /// escaping `"` and `\`) when it holds a delimiter, a quote, a backslash or white space, is empty or reads
    /// NULL; an unquoted NULL is SQL NULL. A NULL cell (an aggregate over no rows) is the empty array.
    func textArray(_ column: Int) throws -> [String?] {
        precondition(!binary, "arrays are only decoded from text results")
        guard let cell = cells[column] else { return [] }
        let bytes = [UInt8](cell)
        let (open, close, comma, quote, backslash) = (UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ","), UInt8(ascii: "\""), UInt8(ascii: "\\"))
        func malformed() -> PostgresError { .decoding("column \(column) '\(String(decoding: bytes, as: UTF8.self))' is not a text array") }
        guard bytes.count >= 2, bytes[0] == open, bytes[bytes.count - 1] == close else { throw malformed() }
        let end = bytes.count - 1
        var elements: [String?] = []
        var i = 1
        while i < end {
            if bytes[i] == quote {
                var element: [UInt8] = []
                i += 1
                while i < end && bytes[i] != quote {
                    if bytes[i] == backslash { i += 1 }
                    guard i < end else { throw malformed() }
                    element.append(bytes[i])
                    i += 1
                }
                guard i < end else { throw malformed() }
                i += 1
                elements.append(String(decoding: element, as: UTF8.self))
            } else {
                let start = i
                while i < end && bytes[i] != comma { i += 1 }
                let token = bytes[start..<i]
                guard !token.isEmpty, !token.contains(open) else { throw malformed() }
                elements.append(token.count == 4 && token.elementsEqual("NULL".utf8) ? nil : String(decoding: token, as: UTF8.self))
            }
            if i < end {
                guard bytes[i] == comma, i + 1 < end else { throw malformed() }
                i += 1
            }
        }
        return elements
    }

    /// The integers of an integer array of any dimensions in text output (`{{1,2},{3,-4}}`), in order; a NULL
    /// cell is none. NULL elements are refused.
    func integers(_ column: Int) throws -> [Int] {
        precondition(!binary, "arrays are only decoded from text results")
        guard let cell = cells[column] else { return [] }
        var values: [Int] = []
        var current = 0, negative = false, inNumber = false
        // Through the buffer: Data's own iterator, a byte per call, was a visible share of a status poll.
        try cell.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            for byte in raw {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    let (times, overflow1) = current.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                    guard !overflow1, !overflow2 else { throw PostgresError.decoding("column \(column): an integer out of range") }
                    current = sum
                    inNumber = true
                case UInt8(ascii: "-") where !inNumber:
                    negative = true
                case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ","):
                    if inNumber { values.append(negative ? -current : current) }
                    current = 0
                    negative = false
                    inNumber = false
                default:
                    throw PostgresError.decoding("column \(column) '\(String(decoding: cell, as: UTF8.self))' is not an integer array")
                }
            }
        }
        guard !inNumber, !negative else { throw PostgresError.decoding("column \(column) is not a closed integer array") }
        return values
    }

    func bool(_ column: Int) throws -> Bool {
        if binary { return try data(column).first == 1 }
        return try string(column) == "t"
    }

    func uuid(_ column: Int) throws -> UUID {
        precondition(!binary, "UUIDs are only decoded from text results")
        let text = try string(column)
        guard let value = UUID(uuidString: text) else { throw PostgresError.decoding("column \(column) '\(text)' is not a UUID") }
        return value
    }

    /// Timestamps are selected as integer microseconds since the Unix epoch (see `Queries`), which avoids
    /// depending on the session's DateStyle and time zone.
    func date(_ column: Int) throws -> Date {
        Date(timeIntervalSince1970: Double(try int(column)) / 1_000_000)
    }

    func optionalDate(_ column: Int) throws -> Date? { isNull(column) ? nil : try date(column) }
}

/// One libpq session. Not thread-safe: a connection belongs to one thread at a time (the pool and the
/// worker threads each hold their own).
final class PostgresConnection {
    private var handle: OpaquePointer?
    let url: String
    /// This session's prepared statements by SQL text (and parameter types), with their names.
    private var prepared: [String: String] = [:]

    /// Connects, failing with `PostgresError.connection` carrying libpq's message.
    init(url: String) throws {
        self.url = url
        handle = Self.connect(url)
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            let message = handle.map { Self.message(PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(handle)
            self.handle = nil
            throw PostgresError.connection(message)
        }
        // Server notices (e.g. "relation already exists, skipping") would go to stderr; the logs are ours.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit { PQfinish(handle) }

    /// Defaults a worker needs that libpq lacks: give up connecting after 10 s instead of waiting for the
    /// kernel, and notice a vanished server (machine gone, no TCP reset) within about a minute instead of
    /// hours. The URL's own settings win: they are expanded after these.
    private static let connectionDefaults: [(String, String)] = [
        ("connect_timeout", "10"),
        ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
        ("tcp_user_timeout", "60000"),
    ]

    private static func connect(_ url: String) -> OpaquePointer? {
        let pairs = connectionDefaults + [("dbname", url)]
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer { (keywords + values).forEach { free($0) } }
        let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        // expand_dbname = 1: the "dbname" value is parsed as a full connection string or URI.
        return PQconnectdbParams(keywordPointers, valuePointers, 1)
    }

    /// False once libpq has noticed the server is gone; such a connection must be replaced.
    var isHealthy: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Whether an idle session is still alive, found without a round trip: a server that ended it (a restart,
    /// `pg_terminate_backend`, an idle timeout) has left its farewell message or the end of the stream on the
    /// socket, which libpq reads only when asked. The pool asks before lending a connection, so a statement
    /// is rarely sent on a session already dead.
    var isAliveWhenIdle: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        guard descriptor.fd >= 0 else { return false }
        if poll(&descriptor, 1, 0) > 0 {
            guard PQconsumeInput(handle) == 1 else { return false }
            _ = drainNotifications(handle)
        }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// The one transaction helper: BEGIN, `body`, COMMIT, and ROLLBACK (on a live session) when `body`
    /// throws. A connection lost before COMMIT was sent leaves nothing behind (the server rolls back an
    /// abandoned transaction); one lost at COMMIT leaves the outcome unknown, so a caller that runs the
    /// transaction again must first recognise its own committed work (`ConnectionPool.transaction`).
    func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute(Queries.begin)
        let result: R
        do {
            result = try body()
        } catch {
            if isHealthy { _ = try? execute(Queries.rollback) }
            throw error
        }
        try execute(Queries.commit)
        return result
    }

    /// Runs one statement with bound parameters. `binaryResults` asks for every column in binary format
    /// (used for bytea payloads, which text format would hex-encode).
    @discardableResult
    func execute(_ query: Query, _ parameters: [SQLValue] = [], binaryResults: Bool = false) throws -> QueryRows {
        guard let handle else { throw PostgresError.connection("connection is closed") }
        let count = parameters.count
        var types = [Oid](repeating: 0, count: count)
        var formats = [Int32](repeating: 0, count: count)
        var lengths = [Int32](repeating: 0, count: count)
        // Each parameter's bytes, NUL-terminated for text; kept alive until PQexecParams returns.
        var buffers: [[UInt8]?] = []
        buffers.reserveCapacity(count)
        for (index, parameter) in parameters.enumerated() {
            switch parameter {
            case let .text(value): buffers.append(Array(value.utf8) + [0])
            case let .int(value): buffers.append(Array(String(value).utf8) + [0])
            case let .double(value): buffers.append(Array(Self.format(value).utf8) + [0])
            case let .bool(value): buffers.append(Array((value ? "true" : "false").utf8) + [0])
            case let .uuid(value): buffers.append(Array(value.uuidString.utf8) + [0])
            case let .textArray(values): buffers.append(Array(SQLValue.arrayLiteral(values).utf8) + [0])
            case let .bytes(value):
                types[index] = 17  // bytea
                formats[index] = 1
                lengths[index] = Int32(value.count)
                // A non-empty buffer so the pointer is never nil for an empty bytea.
                buffers.append(value.isEmpty ? [0] : [UInt8](value))
            case .null: buffers.append(nil)
            }
        }
        guard count > 0 else {
            return try collect(PQexecParams(handle, query.sql, 0, nil, nil, nil, nil, binaryResults ? 1 : 0),
                               query: query.name, binary: binaryResults)
        }
        let statement = try preparedStatement(query, types: types, on: handle)
        let result: OpaquePointer? = Self.withPointers(buffers) { values in
            PQexecPrepared(handle, statement, Int32(count), values, lengths, formats, binaryResults ? 1 : 0)
        }
        return try collect(result, query: query.name, binary: binaryResults)
    }

    /// The name of this session's prepared statement for `query` with these parameter types, preparing it the
    /// first time. Parsing and analysing a statement costs as much as running a small one, and the API runs
    /// the same few thousands of times a second (a status poll). PQexecParams is an unnamed prepare plus an
    /// execute, so preparing with the same types behaves the same; statements last as long as the session
    /// (a rollback keeps them), and a new session prepares its own. Statements without parameters (BEGIN,
    /// COMMIT, a ping) are sent unnamed.
    private func preparedStatement(_ query: Query, types: [Oid], on handle: OpaquePointer) throws -> String {
        let key = types.allSatisfy({ $0 == 0 }) ? query.sql : query.sql + "\u{0}" + types.map(String.init).joined(separator: ",")
        if let name = prepared[key] { return name }
        let name = "dynstereo_\(prepared.count + 1)"
        _ = try collect(PQprepare(handle, name, query.sql, Int32(types.count), types), query: query.name, binary: false)
        prepared[key] = name
        return name
    }

    /// Runs a script of several statements without parameters: only for migration files and fixed
    /// session commands (BEGIN, LISTEN), whose text is part of the program.
    func executeScript(_ sql: String, name: String) throws {
        guard let handle else { throw PostgresError.connection("connection is closed") }
        _ = try collect(PQexec(handle, sql), query: name, binary: false)
    }

    /// Waits up to `timeout` seconds for NOTIFY messages on channels this session LISTENs to; returns
    /// their payloads (empty when the wait timed out), or none early once `interrupt`, a descriptor of the
    /// caller's, becomes readable.
    func waitForNotifications(timeout: Double, interrupt: Int32? = nil) throws -> [String] {
        try waitForNotices(timeout: timeout, interrupt: interrupt).map(\.payload)
    }

    /// `waitForNotifications` with each notice's channel. Throws `PostgresError.connection` once the
    /// server has ended the session (a terminated backend, a restart): its farewell makes the socket readable.
    func waitForNotices(timeout: Double, interrupt: Int32? = nil) throws -> [(channel: String, payload: String)] {
        guard let handle else { throw PostgresError.connection("connection is closed") }
        var notices = drainNotifications(handle)
        if !notices.isEmpty { return notices }
        var descriptors = [pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)]
        guard descriptors[0].fd >= 0 else { throw PostgresError.connection("no socket") }
        if let interrupt { descriptors.append(pollfd(fd: interrupt, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&descriptors, nfds_t(descriptors.count), Int32(max(0, timeout * 1000)))
        if ready > 0, descriptors[0].revents != 0 {
            guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
                throw PostgresError.connection(Self.message(PQerrorMessage(handle)))
            }
            notices = drainNotifications(handle)
        }
        return notices
    }

    private func drainNotifications(_ handle: OpaquePointer) -> [(channel: String, payload: String)] {
        var notices: [(channel: String, payload: String)] = []
        while let notice = PQnotifies(handle) {
            notices.append((String(cString: notice.pointee.relname), String(cString: notice.pointee.extra)))
            PQfreemem(notice)
        }
        return notices
    }

    /// The server process of this session (`pg_stat_activity.pid`), 0 when there is none.
    var backendPID: Int32 { handle.map { PQbackendPID($0) } ?? 0 }

    private func collect(_ result: OpaquePointer?, query: String, binary: Bool) throws -> QueryRows {
        guard let result else {
            throw PostgresError.connection(handle.map { Self.message(PQerrorMessage($0)) } ?? "no result")
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            break
        default:
            let message = Self.message(PQresultErrorMessage(result))
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
            if !isHealthy || state.isEmpty { throw PostgresError.connection(message) }
            throw PostgresError.query(sqlState: state, message: message, query: query)
        }
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var values: [[Data?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<Int32(rowCount) {
            var cells: [Data?] = []
            cells.reserveCapacity(columnCount)
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) == 1 {
                    cells.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    cells.append(Data(bytes: PQgetvalue(result, row, column), count: length))
                }
            }
            values.append(cells)
        }
        return QueryRows(values: values, binary: binary)
    }

    private static func message(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "unknown error" }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n", with: " ")
    }

    /// Doubles in a form PostgreSQL parses back exactly (Swift's shortest round-trip description).
    private static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        return "\(value)"
    }

    /// Hands libpq an array of C pointers into `buffers` (nil for SQL NULL) for the duration of `body`.
    private static func withPointers<R>(_ buffers: [[UInt8]?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        var pointers: [UnsafePointer<CChar>?] = []
        func recurse(_ index: Int) -> R {
            if index == buffers.count { return body(pointers) }
            guard let buffer = buffers[index] else {
                pointers.append(nil)
                return recurse(index + 1)
            }
            return buffer.withUnsafeBufferPointer { raw in
                raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) { pointer in
                    pointers.append(pointer)
                    return recurse(index + 1)
                }
            }
        }
        return recurse(0)
    }
}
