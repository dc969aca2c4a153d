// What can go wrong reading a PyTorch checkpoint, with enough context to say where.

/// Why a checkpoint could not be read.
///
/// Every case carries the context a user needs; `description` is a single line, which the CLI prints after
/// `Error:` and the HTTP layer puts in its JSON error body.
public enum CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or mapped.
    case io(path: String, reason: String)
    /// The file ends before a structure it declares (zip records, pickle opcodes, storage data).
    case truncated(String)
    /// The bytes are not any checkpoint format this reader knows.
    case notACheckpoint(String)
    /// A zip archive whose records contradict each other or point outside the file.
    case malformedArchive(String)
    /// A zip entry whose contents fail their checksum or do not inflate.
    case corruptEntry(name: String, reason: String)
    /// A zip entry the checkpoint needs is absent.
    case missingEntry(String)
    /// A zip feature this reader does not implement (encryption, compression methods other than deflate).
    case unsupportedArchive(String)
    /// The pickle stream is invalid at `offset` (a byte offset into the pickle).
    case malformedPickle(offset: Int, reason: String)
    /// A pickle opcode outside the subset that `torch.save` and Python emit for state dicts.
    case unsupportedOpcode(opcode: UInt8, offset: Int)
    /// The result would need an object of a Python global that is not allow-listed (for example `os.system`).
    case forbiddenGlobal(String)
    /// A storage type or element type this reader cannot convert.
    case unsupportedDType(String)
    /// A tensor whose shape, strides or offset do not fit its storage.
    case malformedTensor(name: String, reason: String)
    /// The unpickled object is not a state dict (nor a training checkpoint holding one).
    case notAStateDict(String)
    /// Two entries end up with the same name (for example after removing `module.` prefixes).
    case duplicateName(String)
    /// An old serialization format that is recognised but not read.
    case unsupportedFormat(String)

    /// One line whatever the file held: names taken from it (zip entries, pickle globals, tar paths) may carry
    /// newlines and other control characters, which are shown escaped (found by fuzz/run).
    public var description: String {
        var line = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}":
                line += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: line.unicodeScalars.append(scalar)
            }
        }
        return line
    }

    private var text: String {
        switch self {
        case let .io(path, reason): return "cannot read \(path): \(reason)"
        case let .truncated(what): return "the checkpoint is truncated: \(what)"
        case let .notACheckpoint(why): return "not a PyTorch checkpoint: \(why)"
        case let .malformedArchive(why): return "damaged checkpoint archive: \(why)"
        case let .corruptEntry(name, reason): return "damaged checkpoint archive: entry \(name): \(reason)"
        case let .missingEntry(name): return "damaged checkpoint archive: entry \(name) is missing"
        case let .unsupportedArchive(what): return "unsupported checkpoint archive: \(what)"
        case let .malformedPickle(offset, reason): return "malformed pickle at byte \(offset): \(reason)"
        case let .unsupportedOpcode(opcode, offset):
            let hex = String(opcode, radix: 16, uppercase: true)
            return "unsupported pickle opcode 0x\(hex.count == 1 ? "0" + hex : hex) at byte \(offset)"
        case let .forbiddenGlobal(name):
            return "refusing to load: the checkpoint uses the Python global \(name), which is not allowed"
                + " (only tensors, dicts, lists, tuples, strings, numbers, booleans and None are built)"
        case let .unsupportedDType(what): return "unsupported tensor type \(what)"
        case let .malformedTensor(name, reason): return "tensor \(name) is malformed: \(reason)"
        case let .notAStateDict(why): return "the checkpoint does not hold a state dict: \(why)"
        case let .duplicateName(name): return "the checkpoint names two tensors \(name)"
        case let .unsupportedFormat(why): return why
        }
    }
}
