// Deterministic randomness and event transcripts shared by the parser tests and their fuzz loops.
@testable import HTTPTransport
import TestSupport

/// Cuts `bytes` into pieces at random points (possibly empty pieces, possibly one byte each).
func randomSplit(_ bytes: [UInt8], using generator: inout SeededGenerator) -> [[UInt8]] {
    var pieces: [[UInt8]] = []
    var index = 0
    while index < bytes.count {
        let maxPiece = Int.random(in: 0...3, using: &generator) == 0 ? 1 : max(1, bytes.count / 3)
        let length = Int.random(in: 0...maxPiece, using: &generator)
        let end = min(bytes.count, index + length)
        pieces.append(Array(bytes[index..<end]))
        index = end
    }
    return pieces
}

/// Mutates a valid message into a nearby, usually invalid one.
func mutate(_ seed: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
    var bytes = seed
    let interesting: [UInt8] = Array("\r\n:; -0123456789aAfFzZ\t\"\u{0}".utf8) + [0x7F, 0xFF]
    for _ in 0..<Int.random(in: 1...4, using: &generator) {
        guard !bytes.isEmpty else { bytes = [UInt8.random(in: 0...255, using: &generator)]; continue }
        let at = Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0: bytes[at] = interesting.randomElement(using: &generator)!
        case 1: bytes.insert(interesting.randomElement(using: &generator)!, at: at)
        case 2: bytes.remove(at: at)
        case 3: bytes = Array(bytes[..<at])
        case 4:
            let length = Int.random(in: 1...16, using: &generator)
            let piece = bytes[at..<min(bytes.count, at + length)]
            bytes.insert(contentsOf: piece, at: at)
        default: bytes[at] = UInt8.random(in: 0...255, using: &generator)
        }
    }
    return bytes
}

/// A comparable transcript of HTTP parser events: consecutive body events are merged, since how a body is
/// chunked into events depends on how the bytes arrived.
func httpTranscript(_ pieces: [[UInt8]], bodyLimit: Int = 4096, limits: HTTPParserLimits = HTTPParserLimits(),
                    maxSteps: Int = 100_000) -> [String] {
    var parser = HTTPRequestParser(limits: limits)
    parser.bodyLimit = bodyLimit
    var transcript: [String] = []
    var body: [UInt8] = []
    var steps = 0
    func record(_ event: HTTPParserEvent) -> Bool {
        steps += 1
        precondition(steps < maxSteps, "parser did not settle")
        switch event {
        case let .body(bytes):
            body += bytes
            return true
        case let .head(head):
            transcript.append("head \(head.method) \(head.target) 1.\(head.minorVersion) \(head.framing) keepAlive=\(head.keepAlive) continue=\(head.expectsContinue) headers=\(head.headers.fields.map { "\($0.name)=\($0.value)" })")
            return true
        case .end:
            transcript.append("body \(String(decoding: body, as: UTF8.self))")
            transcript.append("end")
            body = []
            return true
        case let .error(error):
            transcript.append("error \(error.status.code) \(error.code)")
            return false
        }
    }
    for piece in pieces {
        parser.receive(piece)
        while let event = parser.next() {
            if !record(event) { return transcript }
        }
    }
    if let event = parser.receiveEnd() { _ = record(event) }
    return transcript
}

/// A comparable transcript of multipart events, with part data merged per part.
func multipartTranscript(boundary: String, _ pieces: [[UInt8]], limits: MultipartLimits = MultipartLimits()) -> [String] {
    guard var parser = try? MultipartParser(boundary: boundary, limits: limits) else { return ["bad boundary"] }
    var transcript: [String] = []
    var data: [UInt8] = []
    var steps = 0
    func record(_ event: MultipartEvent) -> Bool {
        steps += 1
        precondition(steps < 1_000_000, "multipart parser did not settle")
        switch event {
        case let .partData(bytes):
            precondition(!bytes.isEmpty, "empty data event")
            data += bytes
        case let .partBegin(head):
            transcript.append("begin \(head.name) \(head.filename ?? "-") \(head.contentType ?? "-")")
        case .partEnd:
            transcript.append("data \(data)")
            transcript.append("partEnd")
            data = []
        case .end:
            transcript.append("end")
        case let .error(error):
            transcript.append("error \(error)")
            return false
        }
        return true
    }
    for piece in pieces {
        parser.receive(piece)
        while let event = parser.next() {
            if !record(event) { return transcript }
        }
    }
    if let event = parser.receiveEnd() { _ = record(event) }
    return transcript
}
