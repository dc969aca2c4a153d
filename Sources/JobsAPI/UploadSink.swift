// Streams a multipart/form-data job submission to disk: file parts go to temp files as they arrive, small
// fields stay in memory, and a digest of the whole payload is computed on the way.
import APIKeys
import Foundation
import HTTPTransport
#if canImport(Glibc)
import Glibc
#endif

/// A folder of its own for one upload's files, removed when the last file referring to it goes away. Files are
/// named after their form part, so validation messages say `left` and `right`, not a temp name.
final class UploadFolder: @unchecked Sendable {
    let url: URL

    init(parent: URL) throws {
        url = parent.appendingPathComponent("dynstereo-upload-\(UUID().uuidString.lowercased())")
        guard mkdir(url.path, 0o700) == 0 else {
            throw APIError(.internalError, "upload_storage", "cannot create a folder in \(parent.path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { rmdir(url.path) }
}

/// A temp file that deletes itself when the last reference goes away.
public final class UploadedFile: @unchecked Sendable {
    public let url: URL
    public private(set) var byteCount: Int = 0
    /// The file name the client gave the part (`left.mp4`), if any: a hint of what the part holds.
    public internal(set) var clientFilename: String?
    fileprivate var fd: Int32
    /// Keeps the folder until this file is gone.
    private let folder: UploadFolder

    fileprivate init(folder: UploadFolder, name: String) throws {
        self.folder = folder
        url = folder.url.appendingPathComponent(name)
        fd = open(url.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw APIError(.internalError, "upload_storage", "cannot create a temp file in \(folder.url.path): \(String(cString: strerror(errno)))")
        }
    }

    fileprivate func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw APIError(.internalError, "upload_storage", "writing the upload failed: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        byteCount += bytes.count
    }

    fileprivate func closeForWriting() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit {
        closeForWriting()
        unlink(url.path)
    }
}

/// A received form: file parts on disk, text fields in memory, and a digest of everything.
public final class UploadedForm: @unchecked Sendable {
    public let files: [String: UploadedFile]
    public let fields: [String: String]
    /// SHA-256 over the parts in name order, independent of part order and boundary.
    public let payloadDigest: String
    /// The request body's size as received (after any chunked framing is removed).
    public let bodyBytes: Int

    init(files: [String: UploadedFile], fields: [String: String], payloadDigest: String, bodyBytes: Int) {
        self.files = files
        self.fields = fields
        self.payloadDigest = payloadDigest
        self.bodyBytes = bodyBytes
    }
}

/// A cap on a body's bytes below the server's upload limit, and what to answer when the body passes it
/// (an API key's remaining daily allowance and its 429).
public struct ByteAllowance {
    public var bytes: Int
    public var refusal: APIError

    public init(bytes: Int, refusal: APIError) {
        self.bytes = bytes
        self.refusal = refusal
    }
}

/// Which parts a form may carry.
public struct FormSchema: Sendable {
    public var fileParts: Set<String>
    public var fieldParts: Set<String>
    public var maxFieldBytes = 256
    public var limits = MultipartLimits()

    public init(fileParts: Set<String>, fieldParts: Set<String>) {
        self.fileParts = fileParts
        self.fieldParts = fieldParts
    }
}

/// A body sink that parses multipart/form-data and writes file parts to `directory`.
public final class MultipartUploadSink: RequestBodySink {
    public typealias Body = JobsRequestBody

    private var parser: MultipartParser
    private let schema: FormSchema
    private let directory: URL
    private var files: [String: UploadedFile] = [:]
    private var fields: [String: String] = [:]
    private var partDigests: [String: String] = [:]
    private var current: (name: String, file: UploadedFile?, text: [UInt8], hasher: SHA256)?
    /// Created with the first file part.
    private var folder: UploadFolder?
    private var bodyBytes = 0
    private let allowance: ByteAllowance?

    public init(contentType: String, schema: FormSchema, directory: URL, allowance: ByteAllowance? = nil) throws {
        self.allowance = allowance
        do {
            parser = try MultipartParser(boundary: try MultipartParser.boundary(contentType: contentType), limits: schema.limits)
        } catch let error as MultipartError {
            if case .notMultipart = error { throw APIError(.unsupportedMediaType, "unsupported_media_type", error.description) }
            throw APIError(.badRequest, "bad_multipart", error.description)
        }
        self.schema = schema
        self.directory = directory
    }

    public func write(_ bytes: [UInt8]) throws {
        bodyBytes += bytes.count
        // Checked as the bytes arrive, so a chunked body (whose size no header announced) is refused as soon
        // as it passes the allowance instead of after being stored.
        if let allowance, bodyBytes > allowance.bytes { throw allowance.refusal }
        parser.receive(bytes)
        while let event = parser.next() { try handle(event) }
    }

    public func finish() throws -> JobsRequestBody {
        if let event = parser.receiveEnd() { try handle(event) }
        guard parser.isComplete else { throw APIError(.badRequest, "bad_multipart", MultipartError.truncated.description) }
        folder = nil
        let hasher = SHA256()
        for name in partDigests.keys.sorted() { hasher.update(Array("\(name)=\(partDigests[name]!)\n".utf8)) }
        let form = UploadedForm(files: files, fields: fields, payloadDigest: hasher.finalizeHex(), bodyBytes: bodyBytes)
        // The form owns the files now: they go when the request that carries it ends, whenever this sink goes.
        files.removeAll()
        return .form(form)
    }

    public func discard() {
        // Dropping the references deletes the temp files.
        files.removeAll()
        current = nil
        folder = nil
    }

    private func handle(_ event: MultipartEvent) throws {
        switch event {
        case let .partBegin(head):
            guard files[head.name] == nil, fields[head.name] == nil else {
                throw APIError.unprocessable("duplicate_field", "the form has more than one part named '\(head.name)'")
            }
            if schema.fileParts.contains(head.name) {
                if folder == nil { folder = try UploadFolder(parent: directory) }
                let file = try UploadedFile(folder: folder!, name: head.name)
                file.clientFilename = head.filename
                current = (head.name, file, [], SHA256())
            } else if schema.fieldParts.contains(head.name) {
                current = (head.name, nil, [], SHA256())
            } else {
                throw APIError.unprocessable("unknown_field", "unknown form part '\(head.name)'")
            }
        case let .partData(bytes):
            guard var part = current else { return }
            part.hasher.update(bytes)
            if let file = part.file {
                try file.append(bytes)
            } else {
                part.text += bytes
                if part.text.count > schema.maxFieldBytes {
                    // 422 as for any invalid parameter: the form field holds no value this long (a number), while
                    // 413 stays for a body or frames past the server's limits.
                    throw APIError.unprocessable("field_too_large", "form field '\(part.name)' exceeds \(schema.maxFieldBytes) bytes")
                }
            }
            current = part
        case .partEnd:
            guard let part = current else { return }
            current = nil
            partDigests[part.name] = part.hasher.finalizeHex()
            if let file = part.file {
                file.closeForWriting()
                files[part.name] = file
            } else {
                fields[part.name] = String(decoding: part.text, as: UTF8.self)
            }
        case .end:
            break
        case let .error(error):
            throw APIError(.badRequest, "bad_multipart", error.description)
        }
    }
}
