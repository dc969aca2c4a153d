// libFuzzer harness for the PNG decoder (libpng behind CPNGShim), through Media's public API.
import Foundation
import Media

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    // A pixel cap like the server's, but small, so a forged header cannot make one input cost seconds.
    let maxPixels = 1 << 20
    do {
        let image = try PNG.decode(bytes, maxPixels: maxPixels)
        fuzzExpect(image.width * image.height <= maxPixels, "decoded past the pixel limit")
        fuzzExpect(image.samples.count == image.width * image.height * image.layout.channels, "sample count")
        let rgb = try PNG.decodeRGB(bytes, maxPixels: maxPixels)
        fuzzExpect(rgb.width == image.width && rgb.height == image.height, "the two decoders disagree on the size")
        fuzzExpect(rgb.pixels.count == rgb.width * rgb.height * 3, "pixel count")
    } catch let error as MediaError {
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
