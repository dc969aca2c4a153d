// dynamic_stereo_formula.pth: the full DynamicStereo state dict, checked name by name and bit for bit.
import Checkpoint
import Foundation
import TestSupport
import XCTest

final class FormulaCheckpointTests: XCTestCase {
    /// The check values printed by `python3 ../shared/golden/weights.py`, the formula's reference.
    func testFormulaMatchesWeightsPyCheckValues() {
        let checks: [(String, UInt64, [Float])] = [
            ("fnet.conv1.weight", 0x3c66_0885_1a7d_5acf, [0.37144339084625244, -0.32620394229888916, -0.9092879295349121]),
            ("update_block04.gru.convz1.bias", 0x3bdc_ac24_af69_cb9c, [-0.015246748924255371, -0.5186585187911987, 0.1435307264328003]),
            ("self_attn_blocks.0.layers.0.norm1.weight", 0x2aa2_04da_cd90_f369, [0.22683250904083252, -0.7637202739715576, -0.05318498611450195]),
        ]
        for (name, hash, uniform) in checks {
            XCTAssertEqual(FormulaWeights.fnv1a64(name), hash, name)
            XCTAssertEqual(FormulaWeights.uniform(name, count: 3), uniform, name)
        }
    }

    func testFormulaCheckpointHoldsEveryDynamicStereoWeightBitForBit() throws {
        let keysData = try Data(contentsOf: SharedData.pth.appendingPathComponent("dynamic_stereo_keys.json"))
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: keysData) as? [[String: Any]])
        let expected = try keys.map { (try XCTUnwrap($0["name"] as? String), try XCTUnwrap($0["shape"] as? [Int])) }
        XCTAssertEqual(expected.count, 274)

        let stateDict = try StateDict.load(SharedData.golden.appendingPathComponent("dynamic_stereo_formula.pth"))
        XCTAssertEqual(stateDict.names, expected.map(\.0), "names in file order")
        XCTAssertEqual(stateDict.entries.map(\.tensor.shape), expected.map(\.1), "shapes")
        XCTAssertEqual(stateDict.parameterCount, 21_471_984)

        var mismatched: [String] = []
        for (name, tensor) in stateDict.entries {
            XCTAssertEqual(tensor.dtype, .float32, name)
            let values = try tensor.floats()
            let reference = FormulaWeights.tensor(name: name, shape: tensor.shape).data
            // Bit for bit: the file was written from the same formula, so no tolerance applies.
            guard values.count == reference.count else { mismatched.append("\(name): count"); continue }
            if let index = values.indices.first(where: { values[$0].bitPattern != reference[$0].bitPattern }) {
                mismatched.append("\(name)[\(index)]: \(values[index]) vs formula \(reference[index])")
            }
        }
        XCTAssertEqual(mismatched, [], "tensors that differ from the formula")

        // The dictionary the network takes holds the same tensors.
        let tensors = try stateDict.floatTensors()
        XCTAssertEqual(tensors.count, 274)
        XCTAssertEqual(tensors["fnet.conv1.weight"]?.shape, [64, 3, 7, 7])
        XCTAssertEqual(Array(tensors["fnet.conv1.weight"]?.data.prefix(3) ?? []),
                       [0.37144339084625244, -0.32620394229888916, -0.9092879295349121].map { Float($0) * Float((3.0 / 147.0).squareRoot()) })
    }
}
