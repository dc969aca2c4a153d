// Element types of PyTorch storages and their conversion to float32.

/// The element type of a checkpoint tensor; the raw value is PyTorch's name for it.
public enum DType: String, CaseIterable, Sendable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

    /// Bytes per element in a storage.
    public var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The dtype of a legacy typed-storage class (`torch.FloatStorage`), by its name in the `torch` module.
    init?(storageClass name: String) {
        switch name {
        case "FloatStorage": self = .float32
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "DoubleStorage": self = .float64
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }

    /// Reads one element at `pointer` (unaligned is fine) as a Float, rounding where float32 cannot hold it.
    @inline(__always)
    func load(_ pointer: UnsafeRawPointer, bigEndian: Bool) -> Float {
        switch self {
        case .float32:
            let bits = pointer.loadUnaligned(as: UInt32.self)
            return Float(bitPattern: bigEndian ? bits.byteSwapped : bits)
        case .float16:
            let bits = pointer.loadUnaligned(as: UInt16.self)
            return DType.halfToFloat(bigEndian ? bits.byteSwapped : bits)
        case .bfloat16:
            // bfloat16 is the upper half of a float32, so widening is exact.
            let bits = pointer.loadUnaligned(as: UInt16.self)
            return Float(bitPattern: UInt32(bigEndian ? bits.byteSwapped : bits) << 16)
        case .float64:
            let bits = pointer.loadUnaligned(as: UInt64.self)
            return Float(Double(bitPattern: bigEndian ? bits.byteSwapped : bits))
        case .int64:
            let value = pointer.loadUnaligned(as: Int64.self)
            return Float(bigEndian ? value.byteSwapped : value)
        case .int32:
            let value = pointer.loadUnaligned(as: Int32.self)
            return Float(bigEndian ? value.byteSwapped : value)
        case .int16:
            let value = pointer.loadUnaligned(as: Int16.self)
            return Float(bigEndian ? value.byteSwapped : value)
        case .int8:
            return Float(pointer.load(as: Int8.self))
        case .uint8:
            return Float(pointer.load(as: UInt8.self))
        case .bool:
            // PyTorch writes bools as one byte, 0 or 1; any other byte still reads as true.
            return pointer.load(as: UInt8.self) == 0 ? 0 : 1
        }
    }

    /// IEEE 754 binary16 to binary32, exact for every input (written out so it does not depend on `Float16`
    /// being available on the platform).
    static func halfToFloat(_ half: UInt16) -> Float {
        let sign = UInt32(half & 0x8000) << 16
        let exponent = Int(half >> 10) & 0x1F
        let mantissa = UInt32(half & 0x03FF)
        if exponent == 0x1F {
            // Infinity or NaN: keep the payload in the high mantissa bits.
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            // Zero or subnormal: the value is mantissa * 2^-24, exact in float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
