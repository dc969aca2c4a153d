// libFuzzer harness for the multipart/form-data parser, compiled with the parser's source files (fuzz/run).
//
// Checks that the parser settles, that part data arrives only inside a part, and that the events do not depend
// on how the body is cut into pieces (consecutive data pieces merged).

private func transcript(boundary: String, _ pieces: [ArraySlice<UInt8>]) -> [String] {
    var limits = MultipartLimits()
    limits.maxPartHeaderBytes = 512
    limits.maxParts = 6
    guard var parser = try? MultipartParser(boundary: boundary, limits: limits) else { return ["bad boundary"] }
    var events: [String] = []
    var data: [UInt8] = []
    var inPart = false
    var steps = 0
    let total = pieces.reduce(0) { $0 + $1.count }
    func flush() {
        if !data.isEmpty { events.append("data \(data)"); data = [] }
    }
    func handle(_ event: MultipartEvent) -> Bool {
        steps += 1
        fuzzExpect(steps <= 4 * total + 16, "the parser does not settle")
        switch event {
        case let .partBegin(head):
            fuzzExpect(!inPart, "a part began inside a part")
            inPart = true
            flush()
            events.append("begin \(head)")
        case let .partData(bytes):
            fuzzExpect(inPart, "part data outside a part")
            data += bytes
        case .partEnd:
            fuzzExpect(inPart, "a part ended outside a part")
            inPart = false
            flush()
            events.append("part end")
        case .end:
            fuzzExpect(!inPart, "the form ended inside a part")
            flush()
            events.append("end")
        case let .error(error):
            flush()
            events.append("error \(error)")
            return false
        }
        return true
    }
    for piece in pieces {
        parser.receive(piece)
        while let event = parser.next() {
            if !handle(event) { return events }
        }
    }
    flush()
    if let event = parser.receiveEnd() { _ = handle(event) }
    events.append("complete \(parser.isComplete)")
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipart(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 2 else { return 0 }
    // Byte 0: how to cut; then a content type line (up to LF) whose boundary the parser uses; then the body.
    let cut = Int(bytes[0])
    let rest = bytes.dropFirst()
    let newline = rest.firstIndex(of: 10) ?? rest.endIndex
    let contentType = String(decoding: rest[rest.startIndex..<newline], as: UTF8.self)
    let body = newline < rest.endIndex ? rest[(newline + 1)...] : rest[rest.endIndex...]
    guard let boundary = try? MultipartParser.boundary(contentType: contentType) else { return 0 }
    let whole = transcript(boundary: boundary, [body])
    var pieces: [ArraySlice<UInt8>] = []
    var index = body.startIndex
    var step = cut % 29 + 1
    while index < body.endIndex {
        let end = min(body.endIndex, index + step)
        pieces.append(body[index..<end])
        index = end
        step = step * 7 % 29 + 1
    }
    let split = transcript(boundary: boundary, pieces)
    fuzzExpect(whole == split, "split body parsed differently:\n\(whole)\n\(split)")
    return 0
}

/// `precondition` that keeps its message in optimized builds, so a finding says what broke.
func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
