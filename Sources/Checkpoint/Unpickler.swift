// A pickle virtual machine for the subset of protocols 0 to 5 that state dicts use, which never runs code.

/// A value on the unpickler's stack.
///
/// Containers are indices into the unpickler's arenas rather than nested values: memo references then share
/// one mutable object as Python's do, cycles are harmless, and no structure is deep enough to overflow the
/// call stack when it is freed.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    /// A bytes object; only its length is kept, since state dicts never need the contents.
    case bytes(count: Int)
    case tuple(Int)
    case list(Int)
    case dict(Int)
    /// An allow-listed global: a callable or class this reader implements itself.
    case global(AllowedGlobal)
    /// A global that is not allow-listed, named `module.qualname`. It is never imported or called.
    case foreign(String)
    /// An inert placeholder for whatever calling or instantiating `foreign` would have built.
    case opaque(String)
    case storage(Int)
    case tensor(Int)

    /// How an error message refers to this value.
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int, .bigInt: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "a bytes object"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case let .global(global): return "the global \(global.name)"
        case let .foreign(name): return "the global \(name)"
        case let .opaque(name): return "an object built by \(name)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }
}

/// The globals a checkpoint may name. Everything else becomes `PickleValue.foreign`.
enum AllowedGlobal: Equatable {
    case orderedDict
    case rebuildTensor
    case rebuildParameter
    case rebuildParameterWithState
    /// `torch._tensor._rebuild_from_type_v2`, which torch.save uses for tensors carrying Python attributes.
    case rebuildFromType
    /// `torch.Tensor` or `torch.nn.parameter.Parameter`, only ever an argument of `rebuildFromType`.
    case tensorClass(name: String)
    case storageClass(DType, name: String)

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        case ("torch._tensor", "_rebuild_from_type_v2"): self = .rebuildFromType
        case ("torch", "Tensor"), ("torch.nn.parameter", "Parameter"): self = .tensorClass(name: "\(module).\(name)")
        case ("torch", _):
            guard let dtype = DType(storageClass: name) else { return nil }
            self = .storageClass(dtype, name: name)
        default: return nil
        }
    }

    var name: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensor: return "torch._utils._rebuild_tensor_v2"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case .rebuildFromType: return "torch._tensor._rebuild_from_type_v2"
        case let .tensorClass(name): return name
        case let .storageClass(_, name): return "torch.\(name)"
        }
    }
}

/// A dict or OrderedDict in insertion order. Python replaces the value of a repeated key in place.
struct PickleDictionary {
    enum Key: Hashable {
        case string(String)
        case int(Int)
    }

    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    private var index: [Key: Int] = [:]

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        let hashable: Key?
        switch key {
        case let .string(text): hashable = .string(text)
        case let .int(number): hashable = .int(number)
        case let .bool(flag): hashable = .int(flag ? 1 : 0)
        default: hashable = nil
        }
        if let hashable, let existing = index[hashable] {
            values[existing] = value
            return
        }
        if let hashable { index[hashable] = keys.count }
        keys.append(key)
        values.append(value)
    }

    func value(forString key: String) -> PickleValue? {
        index[.string(key)].map { values[$0] }
    }
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel[, view])`.
struct StorageReference {
    let dtype: DType
    let key: String
    /// Elements of the root storage before this one starts (non-zero only for legacy storage views).
    let elementOffset: Int
    let elementCount: Int
}

/// The arguments of `torch._utils._rebuild_tensor_v2`, before the storage bytes are known.
struct TensorRecord {
    let storage: Int
    let storageOffset: Int
    let shape: [Int]
    let strides: [Int]
}

/// Runs one pickle program (up to its STOP opcode) without importing or calling anything.
///
/// Allow-listed globals (`AllowedGlobal`) are implemented here; any other global becomes an inert
/// `foreign` value, and calling or instantiating it (REDUCE, NEWOBJ, INST, OBJ) yields an inert `opaque`
/// placeholder, so that training checkpoints can be read past optimizer state full of arbitrary classes.
/// Whether a placeholder is acceptable is decided by the caller, which refuses any that reach the weights.
struct Unpickler {
    private let bytes: ByteRegion
    private(set) var position: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    private(set) var tuples: [[PickleValue]] = []
    private(set) var lists: [[PickleValue]] = []
    private(set) var dicts: [PickleDictionary] = []
    private(set) var storages: [StorageReference] = []
    private(set) var tensors: [TensorRecord] = []

    /// Where the opcode being run starts, for error messages.
    private var opcodeStart = 0

    /// Work done so far, in units of about one value built or moved (an opcode, an item moved into a
    /// container, 16 bytes of a name hashed or joined). Memory and time both stay within a small multiple of it.
    private(set) var work = 0
    /// The most work one pickle may take. The DynamicStereo state dict (274 tensors) takes about 19,000 units,
    /// some 70 per tensor, so this admits state dicts of 50,000 tensors, while a pickle that only builds values
    /// (empty tuples by the million, one list of pairs turned into dicts again and again) stops within a few
    /// hundred megabytes.
    var workLimit = 1 << 22

    init(_ bytes: ByteRegion, startingAt position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    // MARK: Reading

    private func fail(_ reason: String) -> CheckpointError {
        .malformedPickle(offset: opcodeStart, reason: reason)
    }

    private mutating func charge(_ units: Int) throws {
        work += units
        guard work <= workLimit else {
            throw fail("the pickle builds more than \(workLimit) values; a state dict of 50,000 tensors needs fewer")
        }
    }

    private mutating func read(_ count: Int) throws -> ByteRegion {
        guard count >= 0, count <= bytes.count - position else {
            throw CheckpointError.truncated("the pickle ends inside the opcode at byte \(opcodeStart)")
        }
        defer { position += count }
        return try bytes.slice(position, count, "pickle")
    }

    private mutating func readUnsigned(_ width: Int) throws -> UInt64 {
        let region = try read(width)
        return region.littleEndian(0, width: width)
    }

    /// A length field; a length that does not fit the rest of the pickle is a truncation, caught before allocating.
    private mutating func readLength(_ width: Int) throws -> Int {
        let value = try readUnsigned(width)
        guard value <= UInt64(bytes.count - position) else {
            throw CheckpointError.truncated("the pickle declares \(value) bytes at byte \(opcodeStart) but has \(bytes.count - position) left")
        }
        return Int(value)
    }

    private mutating func readLine() throws -> [UInt8] {
        var end = position
        while end < bytes.count, bytes.uint8(end) != 0x0A { end += 1 }
        guard end < bytes.count else {
            throw CheckpointError.truncated("the pickle ends inside the text opcode at byte \(opcodeStart)")
        }
        let line = bytes.bytes(position, end - position)
        position = end + 1
        return line
    }

    private mutating func readTextLine() throws -> String {
        let line = try readLine()
        let text = String(decoding: line, as: UTF8.self)
        guard text.utf8.elementsEqual(line) else { throw fail("a text argument is not UTF-8") }
        return text.hasSuffix("\r") ? String(text.dropLast()) : text
    }

    private func utf8(_ region: ByteRegion) throws -> String {
        let raw = UnsafeRawBufferPointer(start: region.pointer, count: region.count)
        let text = String(decoding: raw, as: UTF8.self)
        guard text.utf8.elementsEqual(raw) else { throw fail("a string is not valid UTF-8") }
        return text
    }

    // MARK: The stack

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), stack.count >= (marks.last ?? 0) else {
            throw fail("the stack is empty")
        }
        return value
    }

    private func top() throws -> PickleValue {
        guard let value = stack.last, stack.count > (marks.last ?? 0) else { throw fail("the stack is empty") }
        return value
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw fail("no MARK on the stack") }
        try charge(stack.count - mark)
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func push(_ value: PickleValue) { stack.append(value) }

    private mutating func newTuple(_ items: [PickleValue]) -> PickleValue {
        tuples.append(items)
        return .tuple(tuples.count - 1)
    }

    private mutating func newList(_ items: [PickleValue] = []) -> PickleValue {
        lists.append(items)
        return .list(lists.count - 1)
    }

    private mutating func newDict() -> PickleValue {
        dicts.append(PickleDictionary())
        return .dict(dicts.count - 1)
    }

    /// Adds items to the list (or set) `target`; on a placeholder it does nothing, since no method runs.
    private mutating func extend(_ target: PickleValue, with items: [PickleValue]) throws {
        try charge(items.count)
        switch target {
        case let .list(index): lists[index].append(contentsOf: items)
        case .opaque: break
        default: throw fail("cannot append to \(target.kind)")
        }
    }

    private mutating func setItems(_ target: PickleValue, _ items: [PickleValue]) throws {
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
        switch target {
        case let .dict(index):
            for pair in stride(from: 0, to: items.count, by: 2) {
                // Hashing a key costs its length: one long string set as a key a million times over is work.
                if case let .string(key) = items[pair] { try charge(1 + key.utf8.count >> 4) } else { try charge(1) }
                dicts[index].set(items[pair], items[pair + 1])
            }
        case .opaque: break
        default: throw fail("cannot set items of \(target.kind)")
        }
    }

    // MARK: Running

    /// Runs opcodes from `position` through STOP and returns the object the pickle describes.
    mutating func load() throws -> PickleValue {
        while true {
            opcodeStart = position
            guard position < bytes.count else {
                throw CheckpointError.truncated("the pickle ends at byte \(position) without a STOP opcode")
            }
            try charge(1)
            let opcode = bytes.uint8(position)
            position += 1
            switch opcode {
            case 0x80:  // PROTO
                let version = try readUnsigned(1)
                guard version <= 5 else { throw fail("pickle protocol \(version) is newer than 5") }
            case 0x95:  // FRAME: a length hint for buffered readers; the opcodes follow as usual
                _ = try readUnsigned(8)
            case 0x2E:  // STOP
                let result = try pop()
                return result

            case 0x28: marks.append(stack.count)  // MARK
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popMark()  // POP_MARK
            case 0x32: push(try top())  // DUP

            case 0x4E: push(.none)  // NONE
            case 0x88: push(.bool(true))  // NEWTRUE
            case 0x89: push(.bool(false))  // NEWFALSE
            case 0x49:  // INT (text; "01" and "00" are protocol 0's booleans)
                let text = try readTextLine()
                if text == "01" { push(.bool(true)) } else if text == "00" { push(.bool(false)) } else {
                    guard let value = Int(text) else { throw fail("INT argument \(text.prefix(40)) is not an integer") }
                    push(.int(value))
                }
            case 0x4C:  // LONG (text)
                var text = try readTextLine()
                if text.hasSuffix("L") { text.removeLast() }
                if let value = Int(text) { push(.int(value)) } else {
                    guard !text.isEmpty, text.drop(while: { $0 == "-" }).allSatisfy(\.isNumber) else {
                        throw fail("LONG argument \(text.prefix(40)) is not an integer")
                    }
                    push(.bigInt(Array(text.utf8)))
                }
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try readUnsigned(4)))))  // BININT
            case 0x4B: push(.int(Int(try readUnsigned(1))))  // BININT1
            case 0x4D: push(.int(Int(try readUnsigned(2))))  // BININT2
            case 0x8A: push(try readLong(byteCount: try readLength(1)))  // LONG1
            case 0x8B: push(try readLong(byteCount: try readLength(4)))  // LONG4
            case 0x46:  // FLOAT (text)
                let text = try readTextLine()
                guard let value = Double(text) else { throw fail("FLOAT argument \(text.prefix(40)) is not a number") }
                push(.float(value))
            case 0x47:  // BINFLOAT, big-endian
                let region = try read(8)
                var bits: UInt64 = 0
                for index in 0..<8 { bits = bits << 8 | UInt64(region.uint8(index)) }
                push(.float(Double(bitPattern: bits)))

            case 0x58: push(.string(try utf8(try read(try readLength(4)))))  // BINUNICODE
            case 0x8C: push(.string(try utf8(try read(try readLength(1)))))  // SHORT_BINUNICODE
            case 0x8D: push(.string(try utf8(try read(try readLength(8)))))  // BINUNICODE8
            case 0x56: push(.string(try rawUnicodeEscape(try readLine())))  // UNICODE (text)
            case 0x53: push(.string(try quotedString(try readLine())))  // STRING (text, Python 2 str)
            case 0x54: push(.string(python2String(try read(try readLength(4)))))  // BINSTRING
            case 0x55: push(.string(python2String(try read(try readLength(1)))))  // SHORT_BINSTRING
            case 0x42: push(.bytes(count: try read(try readLength(4)).count))  // BINBYTES
            case 0x43: push(.bytes(count: try read(try readLength(1)).count))  // SHORT_BINBYTES
            case 0x8E, 0x96: push(.bytes(count: try read(try readLength(8)).count))  // BINBYTES8, BYTEARRAY8

            case 0x29: push(newTuple([]))  // EMPTY_TUPLE
            case 0x74: push(newTuple(try popMark()))  // TUPLE
            case 0x85: let a = try pop(); push(newTuple([a]))  // TUPLE1
            case 0x86: let b = try pop(); let a = try pop(); push(newTuple([a, b]))  // TUPLE2
            case 0x87: let c = try pop(); let b = try pop(); let a = try pop(); push(newTuple([a, b, c]))  // TUPLE3
            case 0x5D, 0x8F: push(newList())  // EMPTY_LIST, EMPTY_SET (sets are kept as lists)
            case 0x6C, 0x91: push(newList(try popMark()))  // LIST, FROZENSET
            case 0x61: let item = try pop(); try extend(try top(), with: [item])  // APPEND
            case 0x65, 0x90: let items = try popMark(); try extend(try top(), with: items)  // APPENDS, ADDITEMS
            case 0x7D: push(newDict())  // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popMark()
                let dict = newDict()
                try setItems(dict, items)
                push(dict)
            case 0x73: let value = try pop(); let key = try pop(); try setItems(try top(), [key, value])  // SETITEM
            case 0x75: let items = try popMark(); try setItems(try top(), items)  // SETITEMS

            case 0x70: memo[try memoIndex(try readTextLine())] = try top()  // PUT
            case 0x71: memo[Int(try readUnsigned(1))] = try top()  // BINPUT
            case 0x72: memo[Int(try readUnsigned(4))] = try top()  // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()  // MEMOIZE
            case 0x67: push(try memoValue(try memoIndex(try readTextLine())))  // GET
            case 0x68: push(try memoValue(Int(try readUnsigned(1))))  // BINGET
            case 0x6A: push(try memoValue(Int(try readUnsigned(4))))  // LONG_BINGET

            case 0x63:  // GLOBAL
                let module = try readTextLine()
                let name = try readTextLine()
                try charge((module.utf8.count + name.utf8.count) >> 4)
                push(Unpickler.resolve(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop()
                let module = try pop()
                guard case let .string(moduleName) = module, case let .string(globalName) = name else {
                    throw fail("STACK_GLOBAL needs two strings, got \(module.kind) and \(name.kind)")
                }
                // The joined name is a new string: memoized long strings must not make it free.
                try charge((moduleName.utf8.count + globalName.utf8.count) >> 4)
                push(Unpickler.resolve(module: moduleName, name: globalName))
            case 0x52:  // REDUCE
                let arguments = try pop()
                let callable = try pop()
                push(try call(callable, arguments))
            case 0x81:  // NEWOBJ
                let arguments = try pop()
                let cls = try pop()
                push(try instantiate(cls, arguments))
            case 0x92:  // NEWOBJ_EX (keyword arguments are ignored like everything else a placeholder receives)
                _ = try pop()
                let arguments = try pop()
                let cls = try pop()
                push(try instantiate(cls, arguments))
            case 0x69:  // INST
                let module = try readTextLine()
                let name = try readTextLine()
                let arguments = newTuple(try popMark())
                push(try instantiate(Unpickler.resolve(module: module, name: name), arguments))
            case 0x6F:  // OBJ
                let items = try popMark()
                guard let cls = items.first else { throw fail("OBJ without a class") }
                push(try instantiate(cls, newTuple(Array(items.dropFirst()))))
            case 0x62:  // BUILD: state would go to __setstate__ or __dict__; nothing here has either
                _ = try pop()
                _ = try top()
            case 0x51:  // BINPERSID
                push(try persistentLoad(try pop()))
            case 0x50:  // PERSID
                throw fail("text persistent ids are not written by torch.save")
            default:
                // EXT1/2/4 (the copyreg extension registry) and out-of-band buffers are never in checkpoints.
                throw CheckpointError.unsupportedOpcode(opcode: opcode, offset: opcodeStart)
            }
        }
    }

    private func memoIndex(_ text: String) throws -> Int {
        guard let index = Int(text), index >= 0 else { throw fail("memo index \(text.prefix(40)) is not a number") }
        return index
    }

    private func memoValue(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw fail("memo slot \(index) is empty") }
        return value
    }

    /// LONG1/LONG4: little-endian two's complement of `byteCount` bytes.
    private mutating func readLong(byteCount: Int) throws -> PickleValue {
        let region = try read(byteCount)
        guard byteCount <= 8 else { return .bigInt(region.bytes(0, byteCount)) }
        guard byteCount > 0 else { return .int(0) }
        var value = region.littleEndian(0, width: byteCount)
        if byteCount < 8, region.uint8(byteCount - 1) & 0x80 != 0 {
            value |= ~0 << UInt64(8 * byteCount)  // sign-extend
        }
        return .int(Int(Int64(bitPattern: value)))
    }

    /// Python 2 `str` objects: torch.load decodes them as UTF-8; bytes that are not UTF-8 read as Latin-1.
    private func python2String(_ region: ByteRegion) -> String {
        let raw = region.bytes(0, region.count)
        let text = String(decoding: raw, as: UTF8.self)
        return text.utf8.elementsEqual(raw) ? text : String(raw.map { Character(Unicode.Scalar($0)) })
    }

    /// The argument of protocol 0's STRING: a Python repr in single or double quotes.
    private func quotedString(_ line: [UInt8]) throws -> String {
        var line = line
        if line.last == 0x0D { line.removeLast() }
        guard line.count >= 2, let quote = line.first, quote == 0x27 || quote == 0x22, line.last == quote else {
            throw fail("STRING argument is not quoted")
        }
        var result: [UInt8] = []
        var index = 1
        while index < line.count - 1 {
            let byte = line[index]
            index += 1
            guard byte == 0x5C, index < line.count - 1 else { result.append(byte); continue }
            let escaped = line[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "x"):
                guard index + 2 <= line.count - 1,
                      let value = UInt8(String(decoding: line[index..<index + 2], as: UTF8.self), radix: 16) else {
                    throw fail("bad \\x escape in STRING")
                }
                result.append(value)
                index += 2
            default: result.append(escaped)  // \\, \', \" and anything Python would keep literally
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The argument of protocol 0's UNICODE: Latin-1 text with \uXXXX and \UXXXXXXXX escapes.
    private func rawUnicodeEscape(_ line: [UInt8]) throws -> String {
        var scalars = String.UnicodeScalarView()
        var index = 0
        while index < line.count {
            let byte = line[index]
            if byte == 0x5C, index + 1 < line.count, line[index + 1] == UInt8(ascii: "u") || line[index + 1] == UInt8(ascii: "U") {
                let width = line[index + 1] == UInt8(ascii: "u") ? 4 : 8
                guard index + 2 + width <= line.count,
                      let code = UInt32(String(decoding: line[(index + 2)..<(index + 2 + width)], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(code) else {
                    throw fail("bad escape in UNICODE")
                }
                scalars.append(scalar)
                index += 2 + width
            } else {
                scalars.append(Unicode.Scalar(byte))
                index += 1
            }
        }
        return String(scalars)
    }
}

// MARK: - The allow-listed globals

extension Unpickler {
    static func resolve(module: String, name: String) -> PickleValue {
        if let allowed = AllowedGlobal(module: module, name: name) { return .global(allowed) }
        return .foreign("\(module).\(name)")
    }

    private func tupleItems(_ value: PickleValue, _ what: String) throws -> [PickleValue] {
        guard case let .tuple(index) = value else { throw fail("\(what) must be a tuple, got \(value.kind)") }
        return tuples[index]
    }

    /// REDUCE: `callable(*arguments)`, for the callables this reader implements; a placeholder otherwise.
    private mutating func call(_ callable: PickleValue, _ arguments: PickleValue, depth: Int = 0) throws -> PickleValue {
        switch callable {
        case let .foreign(name), let .opaque(name):
            return .opaque(name)
        case .global(.orderedDict):
            let items = try tupleItems(arguments, "the arguments of OrderedDict")
            let dict = newDict()
            guard let source = items.first else { return dict }
            // OrderedDict(pairs): a list or tuple of (key, value) tuples.
            let pairs: [PickleValue]
            switch source {
            case let .list(index): pairs = lists[index]
            case let .tuple(index): pairs = tuples[index]
            default: throw fail("OrderedDict of \(source.kind)")
            }
            // One memoized list of pairs can be passed to OrderedDict again and again; each call walks it.
            try charge(pairs.count)
            for pair in pairs {
                let keyValue = try tupleItems(pair, "an OrderedDict item")
                guard keyValue.count == 2 else { throw fail("an OrderedDict item has \(keyValue.count) parts") }
                try setItems(dict, keyValue)
            }
            return dict
        case .global(.rebuildTensor):
            return try rebuildTensor(try tupleItems(arguments, "the arguments of _rebuild_tensor_v2"))
        case .global(.rebuildParameter), .global(.rebuildParameterWithState):
            // A Parameter is its data tensor; requires_grad, hooks and state do not matter for inference.
            let items = try tupleItems(arguments, "the arguments of _rebuild_parameter")
            guard let data = items.first else { throw fail("_rebuild_parameter without data") }
            switch data {
            case .tensor, .opaque: return data
            default: throw fail("_rebuild_parameter of \(data.kind)")
            }
        case .global(.rebuildFromType):
            // (func, type, args, state): the tensor is func(*args); the state holds Python attributes only.
            let items = try tupleItems(arguments, "the arguments of _rebuild_from_type_v2")
            guard items.count == 4 else { throw fail("_rebuild_from_type_v2 with \(items.count) arguments") }
            // torch nests it once at most; a forged chain must not recurse without bound.
            guard depth < 4 else { throw fail("_rebuild_from_type_v2 nested \(depth) deep") }
            let tensor = try call(items[0], items[2], depth: depth + 1)
            switch items[1] {
            case .global(.tensorClass): return tensor
            case let .foreign(name): return .opaque(name)  // a tensor subclass: placeholder, refused among weights
            default: throw fail("_rebuild_from_type_v2 to \(items[1].kind)")
            }
        case let .global(global):
            throw fail("\(global.name) is not called when loading")
        default:
            throw fail("\(callable.kind) is not callable")
        }
    }

    /// NEWOBJ, NEWOBJ_EX, INST, OBJ: `cls.__new__(cls, *arguments)`.
    private mutating func instantiate(_ cls: PickleValue, _ arguments: PickleValue) throws -> PickleValue {
        switch cls {
        case let .foreign(name), let .opaque(name): return .opaque(name)
        case .global(.orderedDict): return newDict()
        default: throw fail("cannot instantiate \(cls.kind)")
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    private mutating func rebuildTensor(_ items: [PickleValue]) throws -> PickleValue {
        guard items.count == 6 || items.count == 7 else { throw fail("_rebuild_tensor_v2 with \(items.count) arguments") }
        let storage: Int
        switch items[0] {
        case let .storage(index): storage = index
        case let .opaque(name): return .opaque(name)  // a tensor on a storage type this reader does not know
        default: throw fail("_rebuild_tensor_v2 of \(items[0].kind)")
        }
        guard case let .int(offset) = items[1], offset >= 0 else { throw fail("tensor storage offset is \(items[1].kind)") }
        let shape = try integers(items[2], "tensor size")
        let strides = try integers(items[3], "tensor stride")
        try charge(shape.count + strides.count)
        guard shape.count == strides.count else { throw fail("tensor size \(shape) and stride \(strides) differ in rank") }
        guard shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw fail("negative size or stride: \(shape), \(strides)")
        }
        tensors.append(TensorRecord(storage: storage, storageOffset: offset, shape: shape, strides: strides))
        return .tensor(tensors.count - 1)
    }

    private func integers(_ value: PickleValue, _ what: String) throws -> [Int] {
        try tupleItems(value, what).map { item in
            guard case let .int(number) = item else { throw fail("\(what) holds \(item.kind)") }
            return number
        }
    }

    /// BINPERSID: torch's storage ids, `('storage', storage class, key, location, numel)`, plus the legacy
    /// format's sixth field, a view `(view key, element offset, element count)` or None.
    private mutating func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        let items = try tupleItems(pid, "a persistent id")
        guard items.count == 5 || items.count == 6, case .string("storage") = items[0] else {
            throw fail("persistent id is not a storage reference")
        }
        let dtype: DType
        switch items[1] {
        case let .global(.storageClass(storageType, _)): dtype = storageType
        case let .foreign(name): return .opaque(name)
        default: throw fail("storage class is \(items[1].kind)")
        }
        let key: String
        switch items[2] {
        case let .string(text): key = text
        case let .int(number): key = String(number)
        default: throw fail("storage key is \(items[2].kind)")
        }
        guard case let .int(count) = items[4], count >= 0 else { throw fail("storage size is \(items[4].kind)") }
        var elementOffset = 0
        var elementCount = count
        if items.count == 6, case let .tuple(view) = items[5] {
            guard tuples[view].count == 3, case let .int(offset) = tuples[view][1], case let .int(viewCount) = tuples[view][2],
                  offset >= 0, viewCount >= 0, offset <= count, viewCount <= count - offset else {
                throw fail("storage view of \(key) does not fit its storage")
            }
            elementOffset = offset
            elementCount = viewCount
        }
        storages.append(StorageReference(dtype: dtype, key: key, elementOffset: elementOffset, elementCount: elementCount))
        return .storage(storages.count - 1)
    }
}
