// `dynstereo bench`: the network's speed and memory per window size, against the machine's own sgemm rate.
import ArgumentParser
import DynamicStereo
import Foundation
import Inference
import Media
import TensorKernels

/// `dynstereo bench`, registered by the executable.
public struct BenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Times the network on windows panning over a real stereo pair and prints GFLOP/s, stages and peak RSS.",
        discussion: """
            FLOPs are counted as torch's FlopCounterMode counts the reference (convolutions and matrix products, \
            2 per multiply-add). Peak RSS is per process: give one --size per run to measure each size's memory. \
            With DYNSTEREO_TRACE_RSS=1 in the environment, every stage that raises the peak RSS prints it to stderr.
            """)

    @Option(name: .customLong("size"), help: "A window as TxHxW@iters (repeatable). Default: 5x128x256@10, 5x256x320@20, 5x480x640@20.")
    var sizes: [String] = []
    @Option(help: "Timed runs per size (the fastest is reported).")
    var runs: Int = 1
    @Option(help: "Untimed runs per size before the timed ones.")
    var warmup: Int = 0
    @Option(help: "A DynamicStereo checkpoint; the golden formula weights by default.")
    var checkpoint: String = "../shared/golden/dynamic_stereo_formula.pth"
    @Option(help: "Left image of the rectified pair the windows pan over.")
    var left: String = "../shared/reference/moto_l.png"
    @Option(help: "Right image of the pair.")
    var right: String = "../shared/reference/moto_r.png"
    @Option(help: "Matrix size of the sgemm reference measurement (0 skips it).")
    var sgemmSize: Int = 2048

    public init() {}

    public func validate() throws {
        for text in sizes {
            guard let size = BenchmarkSize(text) else {
                throw ValidationError("--size \(text): expected TxHxW@iters, e.g. 5x128x256@10")
            }
            guard size.frames >= 1, size.height >= 32, size.width >= 32, size.height % 32 == 0, size.width % 32 == 0,
                  size.iters >= 2, size.iters <= 1000 else {
                throw ValidationError("--size \(text): needs 1 frame or more, height and width multiples of 32, 2...1000 iters")
            }
        }
        guard runs >= 1, warmup >= 0 else { throw ValidationError("--runs must be at least 1 and --warmup at least 0") }
        guard sgemmSize >= 0 && sgemmSize <= 8192 else { throw ValidationError("--sgemm-size must be in 0...8192") }
    }

    public func run() throws {
        let chosen = sizes.isEmpty ? Array(BenchmarkSize.standard.prefix(3)) : sizes.compactMap(BenchmarkSize.init)
        let leftImage = try PNG.decodeRGB(Data(contentsOf: URL(fileURLWithPath: left)))
        let rightImage = try PNG.decodeRGB(Data(contentsOf: URL(fileURLWithPath: right)))
        let network = try DynamicStereoNetwork(checkpoint: URL(fileURLWithPath: checkpoint))
        let benchmark = NetworkBenchmark(network: network, left: leftImage, right: rightImage)
        let threads = ComputeThreads.count
        let sgemm = sgemmSize > 0 ? NetworkBenchmark.sgemmRate(n: sgemmSize) : .nan
        print(String(format: "cblas_sgemm %d^3, %d threads: %.1f GFLOP/s", sgemmSize, threads, sgemm))

        // After loading and the sgemm buffers, as the network's first forward pass applied it before.
        _ = AllocationPolicy.keepFreedMemory
        for size in chosen {
            let result = try benchmark.run(size, runs: runs, warmup: warmup)
            let best = result.best
            let rate = result.gflopsPerSecond
            print("")
            let runList = result.runs.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            print("\(size): " + String(format: "%.2f s per window (runs ", best) + runList
                  + String(format: "), %.3f s per output frame", best / Double(size.frames)))
            print(String(format: "  %.1f GFLOP (torch's count) -> %.1f GFLOP/s = %.0f%% of sgemm; peak RSS %.0f MiB; disparity %.2f...%.2f px",
                         result.flops.total / 1e9, rate, 100 * rate / sgemm, Double(result.peakRSS) / 1_048_576,
                         result.disparityRange.lowerBound, result.disparityRange.upperBound))
            let executed = result.executedGflopsPerSecond
            print(String(format: "  %.1f GFLOP actually issued to sgemm -> %.1f GFLOP/s = %.0f%% of sgemm",
                         result.executedFlops / 1e9, executed, 100 * executed / sgemm))
            print("  stage                        seconds      %    GFLOP  GFLOP/s")
            for stage in NetworkStage.allCases {
                let seconds = result.stages[stage.rawValue], flops = result.flops[stage] / 1e9
                let stageRate = flops > 0 && seconds > 0 ? String(format: "%.1f", flops / seconds) : "-"
                print("  " + stage.name.padding(toLength: 26, withPad: " ", startingAt: 0)
                      + String(format: " %9.3f %6.1f %8.1f ", seconds, 100 * seconds / best, flops)
                      + String(repeating: " ", count: max(0, 8 - stageRate.count)) + stageRate)
            }
            print(String(format: "  update blocks by part (all scales), wall and CPU seconds; whole run %.2f CPU s:",
                         result.cpuSeconds))
            for part in UpdatePart.allCases {
                let seconds = result.updateParts[part.rawValue], cpu = result.updatePartsCPU[part.rawValue]
                print("    " + part.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                      + String(format: " %9.3f %6.1f%% %9.3f", seconds, 100 * seconds / best, cpu))
            }
            print("RESULT {\"size\": \"\(size)\", " + String(
                format: "\"seconds\": %.3f, \"gflop\": %.1f, \"gflops_per_s\": %.1f, \"executed_gflop\": %.1f, \"executed_gflops_per_s\": %.1f, \"sgemm_gflops_per_s\": %.1f, \"peak_rss_mib\": %.0f}",
                best, result.flops.total / 1e9, rate, result.executedFlops / 1e9, executed, sgemm, Double(result.peakRSS) / 1_048_576))
        }
    }
}
