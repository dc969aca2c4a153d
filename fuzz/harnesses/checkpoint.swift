// libFuzzer harness for the checkpoint reader: the zip format and the legacy format (told apart by their first
// bytes, as `dynstereo checkpoint` does), the restricted unpickler and the float conversion.
import Checkpoint
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    do {
        let stateDict = try StateDict.load(data: bytes)
        for (name, tensor) in stateDict.entries {
            fuzzExpect(tensor.count == tensor.shape.reduce(1, *), "\(name): count and shape disagree")
            // Converting is where a wrong bounds check would read outside the storage (ASan reports it);
            // views that only look large are skipped so one input stays cheap.
            if tensor.count <= 1 << 22 {
                let values = try tensor.floats()
                fuzzExpect(values.count == tensor.count, "\(name): \(values.count) values for \(tensor.count)")
            }
        }
    } catch let error as CheckpointError {
        fuzzExpect(!error.description.contains("\n"), "a message of several lines: \(error)")
    } catch {
        fuzzExpect(false, "an error outside CheckpointError: \(error)")
    }
    return 0
}

/// `precondition` that keeps its message in optimized builds, so a finding says what broke.
func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
