// Golden tests of SequenceUpdateBlock3D (UpdateBlock.swift): the first call of each of the network's
// three update blocks on set A, with the formula weights.
@testable import DynamicStereo
import TensorKernels
import TestSupport
import XCTest

final class UpdateBlockTests: XCTestCase {
    /// Runs `update_block<scale>` on its recorded inputs and compares all three outputs.
    ///
    /// Tolerances: the hidden state is in [-1, 1] and the mask and flow update are O(1), but each passes
    /// through chains of convolutions with up to 384·5 or 256·27 terms per sum; fp32 with another
    /// summation order than PyTorch's lands around 1e-6 to 1e-5 off (update_block16, whose correlations
    /// reach 209 and which adds two attention layers, measures 2.4e-5 on its hidden state). 1e-4 keeps a
    /// margin of 4 or more without hiding a wrong tap, weight or channel order (those show as 1e-2 and more).
    private func checkBlock(_ scale: String, withAttention: Bool, frames: Int = 5,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let prefix = "update_block" + scale
        let store = try Golden.formulaWeights(under: [prefix])
        let block = SequenceUpdateBlock3D(store.root(prefix), withAttention: withAttention)
        try store.verify()

        let out = block(net: try Golden.tensor("A", "ub\(scale)_in_net"),
                        inp: try Golden.tensor("A", "ub\(scale)_in_inp"),
                        corr: try Golden.tensor("A", "ub\(scale)_in_corr"),
                        flow: try Golden.tensor("A", "ub\(scale)_in_flow"),
                        frames: frames)
        Golden.assertClose(out.net, try Golden.tensor("A", "ub\(scale)_out_net"), maxAbs: 1e-4,
                                 "\(prefix) net", file: file, line: line)
        Golden.assertClose(out.mask, try Golden.tensor("A", "ub\(scale)_out_mask"), maxAbs: 1e-4,
                                 "\(prefix) mask", file: file, line: line)
        Golden.assertClose(out.delta, try Golden.tensor("A", "ub\(scale)_out_delta"), maxAbs: 1e-4,
                                 "\(prefix) delta", file: file, line: line)
    }

    func testUpdateBlock16WithAttentionMatchesReference() throws {
        try checkBlock("16", withAttention: true)
    }

    func testUpdateBlock04MatchesReference() throws {
        try checkBlock("04", withAttention: false)
    }

    func testUpdateBlock08MatchesReference() throws {
        try checkBlock("08", withAttention: false)
    }

    func testMissingMisshapedAndUnexpectedWeightsAreAllReported() throws {
        var tensors = try Golden.formulaTensors(under: ["update_block04"])
        tensors["update_block04.gru.convq2.bias"] = nil
        tensors["update_block04.mask.2.weight"] = Tensor(shape: [144, 256, 3, 3])
        tensors["update_block04.time_attn.temporal_fc.bias"] = Tensor(shape: [256])
        let store = WeightStore(tensors)
        _ = SequenceUpdateBlock3D(store.root("update_block04"), withAttention: false)
        XCTAssertThrowsError(try store.verify()) { error in
            let problems = (error as? WeightLoadingError)?.problems ?? []
            XCTAssertEqual(Set(problems.map(\.description)), [
                "missing update_block04.gru.convq2.bias [128]",
                "mis-shaped update_block04.mask.2.weight: model [144, 256, 1, 1], checkpoint [144, 256, 3, 3]",
                "unexpected update_block04.time_attn.temporal_fc.bias [256]",
            ])
        }
    }

    /// The GRU as update.py writes it, one convolution per gate, on TensorKernels' plain conv3d loops.
    private func plainGRU(h: Tensor, x: Tensor, weights: [String: Tensor]) -> Tensor {
        var state = h
        for (pass, padding) in [(1, (0, 0, 2)), (2, (0, 2, 0)), (3, (2, 0, 0))] {
            func conv(_ gate: String, _ input: Tensor) -> Tensor {
                let name = "update_block04.gru.conv\(gate)\(pass)"
                return conv3dNaive(input, weight: weights[name + ".weight"]!, bias: weights[name + ".bias"]!,
                                   padding: padding)
            }
            let hx = concatChannels([state, x])
            let z = conv("z", hx).sigmoid()
            let r = conv("r", hx).sigmoid()
            let q = conv("q", concatChannels([r * state, x])).tanh()
            state = (Tensor(shape: z.shape, repeating: 1) - z) * state + z * q
        }
        return state
    }

    func testGRUWithStackedGatesMatchesPlainGRUOnAwkwardShapes() throws {
        let weights = try Golden.formulaTensors(under: ["update_block04"])
        let store = WeightStore(weights)
        let gru = SequenceUpdateBlock3D.SepConvGRU3D(store.root("update_block04")("gru"))
        var random = SeededGenerator(seed: 3)
        // One frame (the temporal kernel sees only padding around it), odd sizes, a one-column image.
        for (t, h, w) in [(1, 3, 7), (2, 5, 1), (3, 1, 2)] {
            let state = random.tensor([t, 128, h, w])
            let input = random.tensor([t, 256, h, w], -2, 2)
            let fast = gru(h: state, x: input)
            let plain = plainGRU(h: state, x: input, weights: weights)
            // Both in float past the convolutions; sgemm against double sums of 1920 terms of O(0.1)
            // differ by about 1e-6 before σ and tanh, which do not amplify.
            Golden.assertClose(fast, plain, maxAbs: 1e-5, "GRU on [\(t), C, \(h), \(w)]")
        }
    }

    func testGRUInChunksMatchesPlainGRU() throws {
        // Chunks of at most 7 pixels: one frame per chunk along width and height (a frame holds 2 x 3 pixels),
        // each of the 2 rows a chunk of its own along time; with the context stored per chunk and without.
        let weights = try Golden.formulaTensors(under: ["update_block04"])
        var random = SeededGenerator(seed: 5)
        let (t, h, w) = (3, 2, 3)
        let state = random.tensor([t, 128, h, w])
        let input = random.tensor([t, 256, h, w], -2, 2)
        let plain = plainGRU(h: state, x: input, weights: weights)
        for budget in [1 << 30, 0] {
            let store = WeightStore(weights)
            let gru = SequenceUpdateBlock3D.SepConvGRU3D(store.root("update_block04")("gru"), contextBudgetBytes: budget,
                                                         chunkPixels: 7)
            XCTAssertEqual(gru.passes.map { gru.chunks($0, frames: t, height: h, width: w).count }, [3, 3, 2])
            // Same bound and reasoning as the stacked-gate test above.
            Golden.assertClose(gru(h: state, x: input), plain, maxAbs: 1e-5, "GRU in chunks, budget \(budget)")
        }
    }

    func testFrameChunksGatherEveryFrameInOrder() {
        var random = SeededGenerator(seed: 6)
        let x = random.tensor([5, 3, 2, 4])
        var seen: [Range<Int>] = []
        // 5 frames of 8 pixels in chunks of at most 20: three chunks, 2 + 2 + 1 frames.
        let y = SequenceUpdateBlock3D.inFrameChunks(frames: 5, height: 2, width: 4, pixels: 20) { frames in
            seen.append(frames)
            return x.slice(frames).map { 2 * $0 + 1 }
        }
        XCTAssertEqual(seen, [0..<2, 2..<4, 4..<5])
        XCTAssertEqual(y, x.map { 2 * $0 + 1 })
    }

    func testGRUWithoutStoredContextMatchesPlainGRU() throws {
        // A zero budget stores no pass's context share: every pass recomputes it, as long windows do for the
        // passes beyond the budget.
        let weights = try Golden.formulaTensors(under: ["update_block04"])
        let store = WeightStore(weights)
        let gru = SequenceUpdateBlock3D.SepConvGRU3D(store.root("update_block04")("gru"), contextBudgetBytes: 0)
        var random = SeededGenerator(seed: 4)
        let (t, h, w) = (3, 4, 6)
        let state = random.tensor([t, 128, h, w])
        let input = random.tensor([t, 256, h, w], -2, 2)
        let context = gru.context(inp: splitChannels(input, [128, 128])[0])
        XCTAssertTrue(context.preactivations.allSatisfy { $0 == nil } && context.inp != nil)
        // Same bound and reasoning as the stacked-gate test above.
        Golden.assertClose(gru(h: state, x: input), plainGRU(h: state, x: input, weights: weights),
                           maxAbs: 1e-5, "GRU without stored context")
    }
}
