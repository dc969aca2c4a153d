// Loading a PyTorch checkpoint's state dict: format detection, the weights' place in the pickle, storage binding.
import Foundation
import TensorKernels

/// The tensors of a checkpoint by name, in the order the file lists them.
///
/// `load` reads both the zip format of `torch.save` (PyTorch 1.6 and later) and the older sequential
/// format. A training checkpoint's weights are taken from its `state_dict` or `model` entry and
/// DataParallel's `module.` prefixes are removed; everything else in the file is skipped without being run.
public struct StateDict: @unchecked Sendable {
    public let entries: [(name: String, tensor: CheckpointTensor)]

    /// Loads the checkpoint at `url`, memory-mapping it so that the weights are not copied onto the heap.
    public static func load(_ url: URL) throws -> StateDict {
        try parse(FileBytes(mapping: url).whole)
    }

    /// Loads a checkpoint held in memory (an upload, a test case); the bytes are copied once.
    public static func load(data: Data) throws -> StateDict {
        try parse(FileBytes(copying: data).whole)
    }

    public var names: [String] { entries.map(\.name) }

    /// The total number of values over all tensors.
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.tensor.count } }

    public subscript(name: String) -> CheckpointTensor? {
        entries.first { $0.name == name }?.tensor
    }

    /// Every tensor converted to float32, keyed by name (what `WeightStore` takes).
    public func floatTensors() throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        result.reserveCapacity(entries.count)
        for entry in entries { result[entry.name] = try entry.tensor.tensor() }
        return result
    }

    static let zipMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]
    static let emptyZipMagic: [UInt8] = [0x50, 0x4B, 0x05, 0x06]

    static func parse(_ bytes: ByteRegion) throws -> StateDict {
        if bytes.hasPrefix(zipMagic) || bytes.hasPrefix(emptyZipMagic) { return try parseZip(bytes) }
        if bytes.count >= 1, bytes.uint8(0) == 0x80 { return try LegacyFormat.parse(bytes) }
        if bytes.count >= 262, bytes.bytes(257, 5) == Array("ustar".utf8) {
            throw CheckpointError.unsupportedFormat(
                "this is a tar checkpoint from PyTorch 0.1/0.2, which is not read; load it with torch.load and save it again with torch.save from PyTorch 1.6 or later")
        }
        if bytes.count == 0 { throw CheckpointError.notACheckpoint("the file is empty") }
        throw CheckpointError.notACheckpoint("it starts with neither a zip header nor a pickle")
    }

    /// The zip format: `<archive>/data.pkl` holds the pickle; storage `k` is the entry `<archive>/data/k`.
    static func parseZip(_ bytes: ByteRegion) throws -> StateDict {
        let archive = try ZipArchive(bytes)
        // torch.save names the folder after the file, but torch.load accepts any single top-level folder.
        let candidates = archive.names.filter { name in
            name.hasSuffix("/data.pkl") && !name.dropLast("/data.pkl".count).contains("/")
        }
        guard let pickleName = candidates.first else {
            throw CheckpointError.notACheckpoint("a zip archive without <folder>/data.pkl")
        }
        guard candidates.count == 1 else {
            throw CheckpointError.malformedArchive("several pickles: \(candidates.joined(separator: ", "))")
        }
        let folder = String(pickleName.dropLast("data.pkl".count))
        var bigEndian = false
        if archive.entries[folder + "byteorder"] != nil {
            let order = try archive.contents(of: folder + "byteorder", limit: 16)
            let text = String(decoding: order.bytes(0, order.count), as: UTF8.self)
            switch text {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw CheckpointError.malformedArchive("byteorder is \(text.prefix(20).debugDescription)")
            }
        }
        var unpickler = Unpickler(try archive.contents(of: pickleName))
        let root = try unpickler.load()
        let records = try weights(in: root, of: unpickler)

        // Storages are bound only for the tensors that are kept, and each entry is checked once.
        var storageEntries: [String: ByteRegion] = [:]
        var entries: [(name: String, tensor: CheckpointTensor)] = []
        entries.reserveCapacity(records.count)
        for (name, record) in records {
            let reference = unpickler.storages[record.storage]
            let entryName = folder + "data/" + reference.key
            let region: ByteRegion
            if let cached = storageEntries[entryName] {
                region = cached
            } else {
                region = try archive.contents(of: entryName)
                storageEntries[entryName] = region
            }
            let storage = try bind(reference, to: region, bigEndian: bigEndian, entryName: entryName)
            entries.append((name, try CheckpointTensor(name: name, record: record, storage: storage)))
        }
        try checkViewTotals(entries)
        return StateDict(entries: entries)
    }

    /// Values all views together may hold beyond the stored ones: a small allowance for expanded views
    /// (`expand`, broadcast buffers) on top of four views of every stored value (tied weights share storages).
    static let expandedValueAllowance = 1 << 26

    /// Refuses views that multiply the stored values: a pickle of a few bytes per tensor can view one large
    /// storage a hundred thousand times, and converting those views would need that many copies.
    static func checkViewTotals(_ entries: [(name: String, tensor: CheckpointTensor)]) throws {
        var stored = 0
        var seen = Set<StorageKey>()
        for (_, tensor) in entries where seen.insert(StorageKey(tensor.storage)).inserted {
            stored += tensor.storage.elementCount
        }
        let limit = stored > (Int.max - expandedValueAllowance) / 4 ? Int.max : stored * 4 + expandedValueAllowance
        var total = 0
        for (name, tensor) in entries {
            let (sum, sumOverflow) = total.addingReportingOverflow(tensor.count)
            total = sum
            guard !sumOverflow, total <= limit else {
                throw CheckpointError.malformedTensor(
                    name: name, reason: "the tensors up to this one view \(total) values of \(stored) stored; a state dict holds each stored value a few times at most")
            }
        }
    }

    /// A storage's identity: the bytes it starts at (storages are never cut from one another in the zip format,
    /// and legacy views of one root start at different offsets).
    private struct StorageKey: Hashable {
        let owner: ObjectIdentifier
        let offset: Int
        let count: Int

        init(_ storage: StorageBytes) {
            owner = ObjectIdentifier(storage.region.owner)
            offset = storage.region.offset
            count = storage.elementCount
        }
    }

    /// The storage a reference names, cut from the bytes of its root storage.
    static func bind(_ reference: StorageReference, to region: ByteRegion, bigEndian: Bool, entryName: String) throws -> StorageBytes {
        let size = reference.dtype.size
        let (byteOffset, offsetOverflow) = reference.elementOffset.multipliedReportingOverflow(by: size)
        let (byteCount, countOverflow) = reference.elementCount.multipliedReportingOverflow(by: size)
        guard !offsetOverflow, !countOverflow, byteOffset <= region.count, byteCount <= region.count - byteOffset else {
            throw CheckpointError.truncated(
                "storage \(entryName) holds \(region.count) bytes, fewer than its \(reference.elementCount) \(reference.dtype.rawValue) values")
        }
        return StorageBytes(region: try region.slice(byteOffset, byteCount, entryName),
                            dtype: reference.dtype, elementCount: reference.elementCount, bigEndian: bigEndian)
    }

    /// Finds the weights in the unpickled object and lists them with `module.` removed.
    ///
    /// The object must be a dict of tensors, or a dict whose `state_dict` or `model` entry is one. A
    /// placeholder for a non-allow-listed global anywhere on that path is refused with the global's name;
    /// placeholders elsewhere (optimizer state, arguments) are skipped.
    static func weights(in root: PickleValue, of unpickler: Unpickler) throws -> [(String, TensorRecord)] {
        func refuse(_ value: PickleValue, _ what: String) -> CheckpointError {
            switch value {
            case let .opaque(name) where name.hasPrefix("torch.") && name.hasSuffix("Storage"):
                // A storage class outside the allow-list is a dtype this reader does not convert (complex, float8).
                return .unsupportedDType("\(name) in \(what)")
            case let .foreign(name), let .opaque(name): return .forbiddenGlobal(name)
            default: return .notAStateDict("\(what) is \(value.kind)")
            }
        }
        guard case let .dict(rootIndex) = root else { throw refuse(root, "the top-level object") }
        var dict = unpickler.dicts[rootIndex]
        for wrapper in ["state_dict", "model"] {
            guard let inner = dict.value(forString: wrapper) else { continue }
            if case let .dict(innerIndex) = inner {
                dict = unpickler.dicts[innerIndex]
                break
            }
            // A tensor may be called "model"; anything else there (a whole pickled nn.Module) is not weights.
            guard case .tensor = inner else { throw refuse(inner, "entry \(wrapper)") }
        }
        var seen = Set<String>()
        var result: [(String, TensorRecord)] = []
        for (key, value) in zip(dict.keys, dict.values) {
            guard case var .string(name) = key else { throw CheckpointError.notAStateDict("a key is \(key.kind)") }
            guard case let .tensor(index) = value else { throw refuse(value, "entry \(name)") }
            if name.hasPrefix("module.") { name.removeFirst("module.".count) }
            guard seen.insert(name).inserted else { throw CheckpointError.duplicateName(name) }
            result.append((name, unpickler.tensors[index]))
        }
        return result
    }
}
