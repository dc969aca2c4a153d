// The restricted pickle VM: what it builds, what it skips inertly, and what it refuses by name.
import Checkpoint
import Foundation
import XCTest

final class PickleSafetyTests: XCTestCase {
    /// A zip checkpoint from `pickle` and float32 storages keyed "0", "1", ...
    func checkpoint(_ pickle: PickleWriter, storages: [[Float]]) -> Data {
        var writer = ZipWriter()
        writer.entries.append(("ckpt/data.pkl", pickle.bytes, .stored))
        for (index, values) in storages.enumerated() {
            writer.entries.append(("ckpt/data/\(index)", storageBytes(values), .stored))
        }
        return Data(writer.archive())
    }

    func testTrainingCheckpointSkipsArbitraryObjectsWithoutCallingThem() throws {
        var p = PickleWriter()
        p.emptyDict()
        p.mark()
        // "optimizer": Adam.__new__(Adam) with a BUILD state, as pickle writes arbitrary class instances.
        p.string("optimizer")
        p.global("torch.optim.adam", "Adam"); p.emptyTuple(); p.newObj()
        p.emptyDict(); p.string("lr"); p.int(3); p.setItem(); p.build()
        // "args": argparse.Namespace() via REDUCE, then list-style APPENDs on the placeholder.
        p.string("args")
        p.global("argparse", "Namespace"); p.emptyTuple(); p.reduce()
        p.mark(); p.int(1); p.int(2); p.op(0x65)  // APPENDS
        // "model": the weights, one wrapped in _rebuild_parameter, with DataParallel prefixes.
        p.string("model")
        p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
        p.mark()
        p.string("module.conv.weight")
        p.global("torch._utils", "_rebuild_parameter")
        p.mark()
        p.torchTensor(key: "0", storageSize: 4, shape: [2, 2], strides: [1, 2])
        p.bool(true); p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
        p.tuple(); p.reduce()
        p.string("module.conv.bias")
        p.torchTensor(key: "1", storageSize: 2, shape: [2], strides: [1])
        p.setItems()
        // A dict's attributes (state_dict's _metadata) arrive through BUILD and are ignored.
        p.none(); p.build()
        p.setItems()
        p.stop()

        let stateDict = try StateDict.load(data: checkpoint(p, storages: [[1, 2, 3, 4], [0.5, -0.5]]))
        XCTAssertEqual(stateDict.names, ["conv.weight", "conv.bias"])
        XCTAssertEqual(try stateDict["conv.weight"]?.floats(), [1, 3, 2, 4], "column-major strides read in row-major order")
        XCTAssertEqual(try stateDict["conv.bias"]?.floats(), [0.5, -0.5])
    }

    func testStateDictEntryIsPreferredAndMemoSharesObjects() throws {
        var p = PickleWriter()
        // The weights dict is memoized while still empty and filled afterwards; the later memo reference
        // must see the filled dict, as Python's shared objects do.
        p.emptyDict(); p.op(0x71); p.op(7)  // BINPUT 7
        p.string("w"); p.torchTensor(key: "0", storageSize: 1, shape: [], strides: []); p.setItem()
        p.op(0x30)  // POP
        p.emptyDict()
        p.string("epoch"); p.int(12); p.setItem()
        p.string("state_dict"); p.op(0x68); p.op(7); p.setItem()  // BINGET 7
        p.stop()
        let stateDict = try StateDict.load(data: checkpoint(p, storages: [[2.5]]))
        XCTAssertEqual(stateDict.names, ["w"])
        XCTAssertEqual(stateDict["w"]?.shape, [])
        XCTAssertEqual(try stateDict["w"]?.floats(), [2.5])
    }

    func testProtocolFourOpcodes() throws {
        var p = PickleWriter(protocol: 4)
        p.op(0x95); p.bytes.le(UInt64(0))  // FRAME
        p.op(0x7D); p.op(0x94)  // EMPTY_DICT, MEMOIZE
        p.op(0x8C); p.bytes += [1, UInt8(ascii: "t")]  // SHORT_BINUNICODE "t"
        // STACK_GLOBAL for _rebuild_tensor_v2, then the usual arguments with a storage offset.
        p.op(0x8C); p.bytes += [12] + Array("torch._utils".utf8)
        p.op(0x8C); p.bytes += [18] + Array("_rebuild_tensor_v2".utf8)
        p.op(0x93)
        p.mark()
        p.mark(); p.string("storage"); p.global("torch", "HalfStorage"); p.string("0"); p.string("cpu"); p.int(3); p.tuple()
        p.op(0x51)
        p.int(1); p.intTuple([2]); p.intTuple([1]); p.bool(false); p.none()
        p.tuple(); p.reduce()
        p.setItem()
        p.stop()
        var writer = ZipWriter()
        // float16 bit patterns: 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (the smallest subnormal).
        writer.entries = [("p4/data.pkl", p.bytes, .stored), ("p4/data/0", [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00], .stored)]
        let stateDict = try StateDict.load(data: Data(writer.archive()))
        XCTAssertEqual(stateDict["t"]?.dtype, .float16)
        XCTAssertEqual(try stateDict["t"]?.floats(), [-2, 0x1p-24])
    }

    func testExpandedViewRepeatsStorageElements() throws {
        var p = PickleWriter()
        p.emptyDict(); p.string("e")
        p.torchTensor(key: "0", storageSize: 2, shape: [3, 2], strides: [0, 1])
        p.setItem(); p.stop()
        let stateDict = try StateDict.load(data: checkpoint(p, storages: [[7, 8]]))
        XCTAssertEqual(try stateDict["e"]?.floats(), [7, 8, 7, 8, 7, 8])
    }

    func testForeignObjectAmongTheWeightsIsRefusedByName() throws {
        var p = PickleWriter()
        p.emptyDict()
        p.string("model"); p.emptyDict()
        p.string("ok"); p.torchTensor(key: "0", storageSize: 1, shape: [1], strides: [1]); p.setItem()
        p.string("trap"); p.global("numpy.core.multiarray", "_reconstruct"); p.emptyTuple(); p.reduce(); p.setItem()
        p.setItem(); p.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: [[1]]))) { error in
            XCTAssertEqual(error as? CheckpointError, .forbiddenGlobal("numpy.core.multiarray._reconstruct"))
        }
    }

    func testStackGlobalCallAtTheTopIsRefusedByName() throws {
        var p = PickleWriter(protocol: 4)
        p.string("builtins"); p.string("eval"); p.op(0x93)
        p.string("__import__('os').system('touch /tmp/pth_pwned_stack')"); p.op(0x85); p.reduce()
        p.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: []))) { error in
            XCTAssertEqual(error as? CheckpointError, .forbiddenGlobal("builtins.eval"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/pth_pwned_stack"))
    }

    func testNonDictResultsAndNonTensorEntriesAreNotStateDicts() throws {
        var list = PickleWriter()
        list.emptyList(); list.stop()
        var number = PickleWriter()
        number.emptyDict(); number.string("lr"); number.int(3); number.setItem(); number.stop()
        for pickle in [list, number] {
            XCTAssertThrowsError(try StateDict.load(data: checkpoint(pickle, storages: []))) { error in
                guard case .notAStateDict? = error as? CheckpointError else { return XCTFail("\(error)") }
            }
        }
    }

    func testNamesThatCollideAfterStrippingModuleAreRefused() throws {
        var p = PickleWriter()
        p.emptyDict(); p.mark()
        p.string("module.w"); p.torchTensor(key: "0", storageSize: 1, shape: [1], strides: [1])
        p.string("w"); p.torchTensor(key: "0", storageSize: 1, shape: [1], strides: [1])
        p.setItems(); p.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: [[1]]))) { error in
            XCTAssertEqual(error as? CheckpointError, .duplicateName("w"))
        }
    }

    func testExtensionRegistryOpcodeIsUnsupported() throws {
        var p = PickleWriter()
        p.op(0x82); p.op(1)  // EXT1
        p.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: []))) { error in
            XCTAssertEqual(error as? CheckpointError, .unsupportedOpcode(opcode: 0x82, offset: 2))
        }
    }

    func testDeeplyNestedSkippedObjectsDoNotExhaustTheStack() throws {
        var p = PickleWriter()
        p.emptyDict()
        p.string("history"); p.none()
        for _ in 0..<200_000 { p.op(0x85) }  // TUPLE1, nesting one level deeper each time
        p.setItem()
        p.string("model"); p.emptyDict()
        p.string("w"); p.torchTensor(key: "0", storageSize: 1, shape: [1], strides: [1]); p.setItem()
        p.setItem(); p.stop()
        let stateDict = try StateDict.load(data: checkpoint(p, storages: [[4]]))
        XCTAssertEqual(try stateDict["w"]?.floats(), [4])
    }

    /// A legacy (pre-1.6) file with a storage view, the sixth persistent-id field only that format writes.
    func testLegacyStorageViewsAreRead() throws {
        var bytes: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]  // magic
        bytes += [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]  // protocol version 1001
        var info = PickleWriter()
        info.emptyDict(); info.string("little_endian"); info.bool(true); info.setItem(); info.stop()
        bytes += info.bytes
        var object = PickleWriter()
        object.emptyDict(); object.string("v")
        object.torchTensor(key: "root", storageSize: 6, offset: 1, shape: [2], strides: [1], view: ("view", 2, 3))
        object.setItem(); object.stop()
        bytes += object.bytes
        var keys = PickleWriter()
        keys.emptyList(); keys.string("root"); keys.op(0x61); keys.stop()
        bytes += keys.bytes
        bytes.le(UInt64(6))
        bytes += storageBytes([0, 10, 20, 30, 40, 50])
        let stateDict = try StateDict.load(data: Data(bytes))
        XCTAssertEqual(try stateDict["v"]?.floats(), [30, 40], "view starts at root element 2, tensor at view element 1")

        XCTAssertThrowsError(try StateDict.load(data: Data(bytes.dropLast(3)))) { error in
            guard case .truncated? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }
}

extension PickleSafetyTests {
    func testPickledModuleUnderModelIsRefusedByItsClass() throws {
        var p = PickleWriter()
        p.emptyDict()
        p.string("epoch"); p.int(3); p.setItem()
        p.string("model"); p.global("models.core.dynamic_stereo", "DynamicStereo"); p.emptyTuple(); p.newObj()
        p.emptyDict(); p.build(); p.setItem()
        p.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: []))) { error in
            XCTAssertEqual(error as? CheckpointError, .forbiddenGlobal("models.core.dynamic_stereo.DynamicStereo"))
        }
    }

    func testUnknownStorageClassIsAnUnsupportedDType() throws {
        var p = PickleWriter()
        p.emptyDict(); p.string("c")
        p.torchTensor(storageClass: "ComplexFloatStorage", key: "0", storageSize: 1, shape: [1], strides: [1])
        p.setItem(); p.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: [[1, 2]]))) { error in
            guard case let .unsupportedDType(what)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(what.contains("torch.ComplexFloatStorage"), what)
        }
    }
}

extension PickleSafetyTests {
    /// `_rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, args, state)`: a tensor with Python attributes.
    func writeRebuildFromType(_ p: inout PickleWriter, type: (String, String), key: String) {
        p.global("torch._tensor", "_rebuild_from_type_v2")
        p.mark()
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.global(type.0, type.1)
        // The inner arguments, the same as torchTensor writes but without the call.
        p.mark()
        p.mark(); p.string("storage"); p.global("torch", "FloatStorage"); p.string(key); p.string("cpu"); p.int(2); p.tuple()
        p.op(0x51)
        p.int(0); p.intTuple([2]); p.intTuple([1]); p.bool(false)
        p.global("collections", "OrderedDict"); p.emptyTuple(); p.reduce()
        p.tuple()
        p.emptyDict(); p.string("note"); p.string("attribute"); p.setItem()
        p.tuple()
        p.reduce()
    }

    func testTensorsRebuiltFromTypeAreReadAndUnknownSubclassesRefused() throws {
        var p = PickleWriter()
        p.emptyDict(); p.string("t"); writeRebuildFromType(&p, type: ("torch", "Tensor"), key: "0"); p.setItem(); p.stop()
        let stateDict = try StateDict.load(data: checkpoint(p, storages: [[1, 2]]))
        XCTAssertEqual(try stateDict["t"]?.floats(), [1, 2])

        var q = PickleWriter()
        q.emptyDict(); q.string("t"); writeRebuildFromType(&q, type: ("mylib", "FancyTensor"), key: "0"); q.setItem(); q.stop()
        XCTAssertThrowsError(try StateDict.load(data: checkpoint(q, storages: [[1, 2]]))) { error in
            XCTAssertEqual(error as? CheckpointError, .forbiddenGlobal("mylib.FancyTensor"))
        }
    }
}

extension PickleSafetyTests {
    func testStrideOfASizeOneDimensionIsIgnored() throws {
        var p = PickleWriter()
        p.emptyDict(); p.string("s")
        p.torchTensor(key: "0", storageSize: 3, shape: [1, 2, 1], strides: [Int.max, 2, Int.max])
        p.setItem(); p.stop()
        let stateDict = try StateDict.load(data: checkpoint(p, storages: [[5, 6, 7]]))
        XCTAssertEqual(try stateDict["s"]?.floats(), [5, 7])
    }

    func testOverflowingShapesAndStridesAreRefused() throws {
        for (shape, strides) in [([Int.max, 2], [1, 1]), ([2, 2], [Int.max, 1]), ([1 << 40, 1 << 40], [0, 0])] {
            var p = PickleWriter()
            p.emptyDict(); p.string("x")
            p.torchTensor(key: "0", storageSize: 1, shape: shape, strides: strides)
            p.setItem(); p.stop()
            XCTAssertThrowsError(try StateDict.load(data: checkpoint(p, storages: [[1]])), "\(shape) \(strides)") { error in
                guard case .malformedTensor? = error as? CheckpointError else { return XCTFail("\(error)") }
            }
        }
    }
}
