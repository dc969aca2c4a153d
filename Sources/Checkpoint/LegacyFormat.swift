// The sequential serialization of torch.save before PyTorch 1.6 (torch/serialization.py, _legacy_save).

/// Reads the pre-1.6 format: five pickles in a row (magic number, protocol version, system info, the
/// object, the storage keys) followed by each storage's raw bytes, in the order of the keys.
enum LegacyFormat {
    /// 0x1950a86a20f9469cfc6c, the magic number torch wrote first, as little-endian bytes.
    static let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let protocolVersion = 1001

    static func parse(_ bytes: ByteRegion) throws -> StateDict {
        var magicPickle = Unpickler(bytes)
        guard case let .bigInt(magicBytes) = try magicPickle.load(), magicBytes == magic else {
            throw CheckpointError.notACheckpoint("a pickle without PyTorch's magic number")
        }
        var versionPickle = Unpickler(bytes, startingAt: magicPickle.position)
        guard case .int(protocolVersion) = try versionPickle.load() else {
            throw CheckpointError.unsupportedFormat("unsupported legacy PyTorch checkpoint version; load it with torch.load and save it again with torch.save from PyTorch 1.6 or later")
        }
        var systemPickle = Unpickler(bytes, startingAt: versionPickle.position)
        let system = try systemPickle.load()
        var bigEndian = false
        if case let .dict(index) = system, case let .bool(little)? = systemPickle.dicts[index].value(forString: "little_endian") {
            bigEndian = !little
        }

        var objectPickle = Unpickler(bytes, startingAt: systemPickle.position)
        let root = try objectPickle.load()
        var keysPickle = Unpickler(bytes, startingAt: objectPickle.position)
        let keyList = try keysPickle.load()
        guard case let .list(keysIndex) = keyList else {
            throw CheckpointError.notACheckpoint("the legacy storage key list is \(keyList.kind)")
        }

        // Every storage's element type comes from the references in the object pickle.
        var dtypes: [String: DType] = [:]
        for reference in objectPickle.storages { dtypes[reference.key] = reference.dtype }

        // After the keys: for each storage, its element count (int64) and then its elements.
        var roots: [String: ByteRegion] = [:]
        var position = keysPickle.position
        for keyValue in keysPickle.lists[keysIndex] {
            guard case let .string(key) = keyValue else { throw CheckpointError.notACheckpoint("a legacy storage key is \(keyValue.kind)") }
            guard let dtype = dtypes[key] else {
                throw CheckpointError.notACheckpoint("legacy storage \(key) is not referenced, so its element type is unknown")
            }
            let header = try bytes.checkedLittleEndian(position, width: 8, "size of legacy storage \(key)")
            let count = bigEndian ? header.byteSwapped : header
            guard count <= UInt64(bytes.count) else {
                throw CheckpointError.truncated("legacy storage \(key) claims \(count) values")
            }
            let byteCount = Int(count) * dtype.size
            roots[key] = try bytes.slice(position + 8, byteCount, "legacy storage \(key)")
            position += 8 + byteCount
        }

        let records = try StateDict.weights(in: root, of: objectPickle)
        var entries: [(name: String, tensor: CheckpointTensor)] = []
        for (name, record) in records {
            let reference = objectPickle.storages[record.storage]
            guard let region = roots[reference.key] else {
                throw CheckpointError.truncated("legacy storage \(reference.key) of \(name) is not in the file")
            }
            let storage = try StateDict.bind(reference, to: region, bigEndian: bigEndian, entryName: "legacy storage \(reference.key)")
            entries.append((name, try CheckpointTensor(name: name, record: record, storage: storage)))
        }
        try StateDict.checkViewTotals(entries)
        return StateDict(entries: entries)
    }
}
