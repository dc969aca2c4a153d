// One tensor of a checkpoint: its type, shape and layout over storage bytes, converted to float32 on demand.
import TensorKernels

/// The bytes of one storage, with the byte order they were written in.
struct StorageBytes: @unchecked Sendable {
    let region: ByteRegion
    let dtype: DType
    /// Elements this storage may address (its declared size, within the bytes present).
    let elementCount: Int
    let bigEndian: Bool
}

/// A tensor as a checkpoint stores it: a strided view into a storage that other tensors may share.
///
/// The values stay in the (memory-mapped) file until `floats()` converts them, so listing a checkpoint
/// reads no weights and loading one holds each value once as file pages and once as a float array.
public struct CheckpointTensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    /// Element strides into the storage, as PyTorch records them.
    public let strides: [Int]
    /// Element offset of the first value in the storage.
    public let storageOffset: Int
    /// The number of values, the product of `shape` (1 for a 0-d tensor).
    public let count: Int
    let storage: StorageBytes

    /// Views that repeat storage elements (stride 0) could describe huge tensors in a tiny file; beyond this
    /// many values such a view is refused rather than allocated.
    static let expandedViewLimit = 1 << 28

    /// Validates that every element the view addresses lies inside the storage.
    init(name: String, record: TensorRecord, storage: StorageBytes) throws {
        var count = 1
        var lastElement = record.storageOffset
        for (size, stride) in zip(record.shape, record.strides) {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { throw CheckpointError.malformedTensor(name: name, reason: "shape \(record.shape) overflows") }
            count = product
            if size > 0 {
                let (span, spanOverflow) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, sumOverflow) = lastElement.addingReportingOverflow(span)
                guard !spanOverflow, !sumOverflow else {
                    throw CheckpointError.malformedTensor(name: name, reason: "strides \(record.strides) overflow")
                }
                lastElement = sum
            }
        }
        if count > 0, lastElement >= storage.elementCount {
            throw CheckpointError.malformedTensor(
                name: name,
                reason: "shape \(record.shape) with strides \(record.strides) at offset \(record.storageOffset) reaches element \(lastElement) of a storage of \(storage.elementCount)")
        }
        if count > storage.elementCount, count > CheckpointTensor.expandedViewLimit {
            throw CheckpointError.malformedTensor(name: name, reason: "a view of \(storage.elementCount) stored values expands to \(count)")
        }
        self.dtype = storage.dtype
        self.shape = record.shape
        self.strides = record.strides
        self.storageOffset = record.storageOffset
        self.count = count
        self.storage = storage
    }

    /// Whether the view is row-major and dense, ignoring dimensions of size 1 whose stride never matters.
    public var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if size == 0 { return true }
            guard stride == expected else { return false }
            expected *= size
        }
        return true
    }

    /// The values in row-major order as float32 (float64 and int64 are rounded, bool is 0 or 1).
    public func floats() throws -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            write(into: buffer)
            initialized = count
        }
    }

    /// The tensor as a TensorKernels tensor.
    public func tensor() throws -> Tensor {
        Tensor(shape: shape, data: try floats())
    }

    /// Converts straight from the storage bytes into `buffer` (which holds `count` floats).
    func write(into buffer: UnsafeMutableBufferPointer<Float>) {
        guard count > 0, let output = buffer.baseAddress else { return }
        let base = storage.region.pointer
        let size = dtype.size
        let bigEndian = storage.bigEndian
        if isContiguous {
            let start = base + storageOffset * size
            if dtype == .float32, !bigEndian {
                // The common case, a whole float32 checkpoint: one copy from the mapped pages.
                UnsafeMutableRawPointer(output).copyMemory(from: start, byteCount: count * 4)
            } else {
                for index in 0..<count {
                    // index < count and the init checked that offset + count - 1 is inside the storage.
                    output[index] = dtype.load(start + index * size, bigEndian: bigEndian)
                }
            }
            return
        }
        // A strided view: walk the indices like an odometer, last dimension fastest. A dimension of size 1
        // never steps, so its stride (which PyTorch leaves arbitrary) is taken as 0 and cannot overflow.
        let rank = shape.count
        let strides = zip(shape, self.strides).map { size, stride in size <= 1 ? 0 : stride }
        var index = [Int](repeating: 0, count: rank)
        var element = storageOffset
        for position in 0..<count {
            // element stays inside the storage: the init checked the largest element this walk can reach.
            output[position] = dtype.load(base + element * size, bigEndian: bigEndian)
            var dimension = rank - 1
            while dimension >= 0 {
                index[dimension] += 1
                element += strides[dimension]
                if index[dimension] < shape[dimension] { break }
                element -= strides[dimension] * shape[dimension]
                index[dimension] = 0
                dimension -= 1
            }
        }
    }
}
