// libFuzzer harness for the tar reader (plain and gzip), through Media's public API.
import Foundation
import Media

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    do {
        let reader = try TarReader(data: bytes, name: "fuzz.tar")
        // A small budget for what the archive may inflate to keeps each input cheap, as the server's limit does.
        reader.maxArchiveBytes = 4 << 20
        var entries = 0
        while let entry = try reader.next() {
            entries += 1
            fuzzExpect(entry.size >= 0, "negative entry size")
            fuzzExpect(!entry.path.hasPrefix("/") && !entry.path.split(separator: "/").contains(".."), "unsafe path \(entry.path)")
            // Read every other entry's contents so that both reading and skipping are exercised.
            if entry.kind == .file, entries % 2 == 1 {
                let contents = try reader.readContents(maxBytes: 1 << 20)
                fuzzExpect(contents.count == entry.size, "contents of \(entry.size) bytes came back as \(contents.count)")
            }
        }
    } catch let error as MediaError {
        // Refusing a bad archive with an error is the expected outcome for most inputs; the CLI prints it as one line.
        fuzzExpect(!error.description.contains("\n"), "a message of several lines: \(error)")
    } catch {
        fuzzExpect(false, "an error outside MediaError: \(error)")
    }
    return 0
}

/// `precondition` that keeps its message in optimized builds, so a finding says what broke.
func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
