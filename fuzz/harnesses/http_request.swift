// libFuzzer harness for the HTTP/1.1 request parser. Compiled together with the parser's source files (see
// fuzz/run), so it names the parser's types without a module prefix.
//
// Beyond "never crash", it checks two properties on every input: the parser settles (a bounded number of
// events per input byte), and how the bytes arrive does not matter (the input fed whole and fed in pieces cut
// where its own bytes say give the same events, consecutive body pieces merged).

/// The events of one parse, as comparable text; body pieces are merged into one entry.
private func transcript(_ pieces: [ArraySlice<UInt8>], bodyLimit: Int) -> [String] {
    var limits = HTTPParserLimits()
    limits.maxHeadBytes = 2048  // small limits reach the limit checks with small inputs
    limits.maxHeaderCount = 16
    limits.maxChunkLineBytes = 64
    limits.maxTrailerBytes = 256
    var parser = HTTPRequestParser(limits: limits)
    parser.bodyLimit = bodyLimit
    var events: [String] = []
    var body: [UInt8] = []
    let total = pieces.reduce(0) { $0 + $1.count }
    var steps = 0
    func flushBody() {
        if !body.isEmpty { events.append("body \(body)"); body = [] }
    }
    func drain() -> Bool {
        while let event = parser.next() {
            steps += 1
            // Every event consumes input or ends a message, so a few per byte is the most a parse can take.
            fuzzExpect(steps <= 4 * total + 16, "the parser does not settle")
            switch event {
            case let .body(bytes):
                fuzzExpect(!bytes.isEmpty, "an empty body event")
                body += bytes
                fuzzExpect(body.count <= bodyLimit, "a body past its limit was delivered")
            case let .head(head):
                flushBody()
                events.append("head \(head.method) \(head.target) \(head.minorVersion) \(head.framing) \(head.keepAlive) \(head.expectsContinue) \(head.headers.fields.map { "\($0.name):\($0.value)" })")
            case .end:
                flushBody()
                events.append("end")
            case let .error(error):
                flushBody()
                events.append("error \(error)")
                return false
            }
        }
        return true
    }
    for piece in pieces {
        parser.receive(piece)
        if !drain() { return events }
    }
    flushBody()
    if let event = parser.receiveEnd() {
        if case let .error(error) = event { events.append("error at end \(error)") } else { events.append("at end \(event)") }
    }
    return events
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    // The first byte picks the body limit and how the rest is cut, so the fuzzer explores both.
    let input = bytes.dropFirst()
    let bodyLimit = [0, 1, 16, 300, 1 << 20][Int(first & 7) % 5]
    let whole = transcript([input], bodyLimit: bodyLimit)
    var pieces: [ArraySlice<UInt8>] = []
    var index = input.startIndex
    var step = Int(first >> 3) + 1
    while index < input.endIndex {
        let end = min(input.endIndex, index + step)
        pieces.append(input[index..<end])
        index = end
        step = step * 5 % 31 + 1  // uneven cuts: 1 to 31 bytes
    }
    let split = transcript(pieces, bodyLimit: bodyLimit)
    fuzzExpect(whole == split, "split input parsed differently:\n\(whole)\n\(split)")
    return 0
}

/// `precondition` that keeps its message in optimized builds, so a finding says what broke.
func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
