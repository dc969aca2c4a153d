// `dynstereo demo`: weights the network loads strictly, equal to the formula, and the random-dot clip.
import Checkpoint
import DynamicStereo
import Foundation
import Media
import TensorKernels
import TestSupport
import XCTest

final class DemoCommandTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private struct KeyEntry: Decodable {
        let name: String
        let shape: [Int]
    }

    func testDemoWritesTheFormulaCheckpointAndTheClip() throws {
        let out = scratch.appendingPathComponent("data")
        let run = try Executable.run(["demo", "--output", out.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("not a trained model"), run.stdout)

        // The checkpoint: every tensor the real checkpoints have, with their shapes, holding the formula's values,
        // and the network takes it strictly (nothing missing, unexpected or mis-shaped).
        let stateDict = try StateDict.load(out.appendingPathComponent("demo_formula.pth"))
        let keys = try JSONDecoder().decode([KeyEntry].self,
                                            from: Data(contentsOf: SharedData.pth.appendingPathComponent("dynamic_stereo_keys.json")))
        XCTAssertEqual(Set(stateDict.names), Set(keys.map(\.name)))
        XCTAssertEqual(stateDict.names.count, keys.count)
        let tensors = try stateDict.floatTensors()
        for key in keys {
            let tensor = try XCTUnwrap(tensors[key.name], key.name)
            XCTAssertEqual(tensor.shape, key.shape, key.name)
            let formula = FormulaWeights.tensor(name: key.name, shape: key.shape)
            XCTAssertEqual(tensor.data.map(\.bitPattern), formula.data.map(\.bitPattern), key.name)
        }
        XCTAssertNoThrow(try DynamicStereoNetwork(stateDict: tensors))

        // The clip: the demo's frames, losslessly, and its true disparity.
        let clip = RandomDotStereo.demo
        let demo = out.appendingPathComponent("demo")
        let sequence = try StereoSequence.load(left: demo.appendingPathComponent("left.tar"), right: demo.appendingPathComponent("right.tar"))
        XCTAssertEqual(sequence.names, ["0000", "0001", "0002", "0003", "0004"])
        for t in 0..<clip.frames {
            XCTAssertEqual(sequence.left[t], clip.left(frame: t), "left frame \(t)")
            XCTAssertEqual(sequence.right[t], clip.right(frame: t), "right frame \(t)")
        }
        let truth = try NPY.read(demo.appendingPathComponent("disparity.npy"))
        XCTAssertEqual(truth.shape, [5, 64, 128])
        for (t, y, x) in [(0, 0, 0), (0, 20, 45), (4, 20, 45), (4, 20, 60), (3, 47, 127)] {
            XCTAssertEqual(truth.data[(t * 64 + y) * 128 + x], Float(clip.disparity(x: x, y: y, frame: t)), "(\(t), \(y), \(x))")
        }
        XCTAssertEqual(Set(truth.data), [4, 12])
    }

    func testAnOutputThatIsAFileIsAOneLineError() throws {
        let file = scratch.appendingPathComponent("taken")
        try Data("x".utf8).write(to: file)
        let run = try Executable.run(["demo", "--output", file.path])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("Error: "), run.stderr)
    }
}
