// The network's speed and memory on real frames: what `dynstereo bench` measures and prints.
import DynamicStereo
import Dispatch
import Foundation
import Media
import TensorKernels

/// A window size to measure: frames of height x width at a number of 1/4-scale iterations.
public struct BenchmarkSize: Equatable, Sendable, CustomStringConvertible {
    public let frames: Int, height: Int, width: Int, iters: Int

    public init(frames: Int, height: Int, width: Int, iters: Int) {
        (self.frames, self.height, self.width, self.iters) = (frames, height, width, iters)
    }

    /// Parses "TxHxW@iters", e.g. "5x128x256@10".
    public init?(_ text: String) {
        let halves = text.split(separator: "@")
        guard halves.count == 2, let iters = Int(halves[1]) else { return nil }
        let dims = halves[0].split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3 else { return nil }
        self.init(frames: dims[0], height: dims[1], width: dims[2], iters: iters)
    }

    public var description: String { "\(frames)x\(height)x\(width)@\(iters)" }

    /// The sizes of the performance issue: three speed sizes and a 20-frame window for memory.
    public static let standard: [BenchmarkSize] = [
        BenchmarkSize(frames: 5, height: 128, width: 256, iters: 10),
        BenchmarkSize(frames: 5, height: 256, width: 320, iters: 20),
        BenchmarkSize(frames: 5, height: 480, width: 640, iters: 20),
        BenchmarkSize(frames: 20, height: 480, width: 640, iters: 20),
    ]
}

/// Why a benchmark could not run.
public enum BenchmarkError: Error, CustomStringConvertible {
    case invalidSize(String)
    case sourceTooSmall(width: Int, height: Int, needed: String)

    public var description: String {
        switch self {
        case let .invalidSize(message): return message
        case let .sourceTooSmall(width, height, needed):
            return "the source pair is \(width)x\(height), too small for \(needed)"
        }
    }
}

/// One size's figures.
public struct BenchmarkResult: Sendable {
    public let size: BenchmarkSize
    /// Wall seconds of each timed forward pass.
    public let runs: [Double]
    /// Seconds per stage of the fastest run.
    public let stages: [Double]
    /// Wall and CPU seconds per part of the update blocks in the fastest run.
    public let updateParts: [Double], updatePartsCPU: [Double]
    /// CPU seconds of the process over the fastest run (all threads).
    public let cpuSeconds: Double
    public let flops: FlopCount
    /// FLOPs the fastest run actually issued to sgemm (2 per multiply-add): smaller than torch's count where we
    /// skip or shrink work (Winograd, the GRU's context once per scale, the mask head in last iterations only).
    public let executedFlops: Double
    /// Peak resident set of the process so far (VmHWM), in bytes.
    public let peakRSS: Int
    /// The output's disparity range, to show the run computed something.
    public let disparityRange: ClosedRange<Float>

    public var best: Double { runs.min() ?? .nan }
    public var gflopsPerSecond: Double { flops.total / best / 1e9 }
    public var executedGflopsPerSecond: Double { executedFlops / best / 1e9 }
}

/// Runs the network on windows panning over a real rectified stereo pair, like the reference's
/// `bench_reference.py make_video`: the pair is scaled down just enough for the window to pan 1 row and
/// 2 columns per frame, then each frame is a crop of it.
public struct NetworkBenchmark {
    public let network: DynamicStereoNetwork
    public let left: RGBImage, right: RGBImage

    public init(network: DynamicStereoNetwork, left: RGBImage, right: RGBImage) {
        (self.network, self.left, self.right) = (network, left, right)
    }

    /// The window for `size`: [T, 3, H, W] left and right tensors with values 0...255.
    public func window(_ size: BenchmarkSize) throws -> (left: Tensor, right: Tensor) {
        guard size.frames >= 1, size.height >= 32, size.width >= 32, size.height % 32 == 0, size.width % 32 == 0,
              size.iters >= 2 else {
            throw BenchmarkError.invalidSize("size \(size): frames >= 1, height and width multiples of 32, iters >= 2")
        }
        let (stepY, stepX) = (1, 2)
        // The smallest scale among 0.25, 0.30, ... 1.0 that leaves a 16-pixel margin around the panning window.
        let need = max(Double(size.height + stepY * size.frames + 16) / Double(left.height),
                       Double(size.width + stepX * size.frames + 16) / Double(left.width), 0.25)
        let scale = min(1, (need * 20).rounded(.up) / 20)
        let (scaledW, scaledH) = (Int((Double(left.width) * scale).rounded()), Int((Double(left.height) * scale).rounded()))
        let y0 = (scaledH - size.height) / 2 - stepY * size.frames / 2
        let x0 = (scaledW - size.width) / 2 - stepX * size.frames / 2
        guard y0 >= 0, x0 >= 0, y0 + stepY * (size.frames - 1) + size.height <= scaledH,
              x0 + stepX * (size.frames - 1) + size.width <= scaledW else {
            throw BenchmarkError.sourceTooSmall(width: left.width, height: left.height, needed: "\(size)")
        }
        func frames(_ image: RGBImage) -> Tensor {
            let scaled = Self.resize(image, width: scaledW, height: scaledH)
            return Tensor(shape: [size.frames, 3, size.height, size.width]) { out in
                let plane = size.height * size.width
                for t in 0..<size.frames {
                    let (top, left) = (y0 + stepY * t, x0 + stepX * t)
                    for y in 0..<size.height {
                        for x in 0..<size.width {
                            let source = ((top + y) * scaledW + left + x) * 3
                            for c in 0..<3 { out[(t * 3 + c) * plane + y * size.width + x] = scaled[source + c] }
                        }
                    }
                }
            }
        }
        return (frames(left), frames(right))
    }

    /// Bilinear resampling of an RGB image to width x height (pixel centres aligned), as floats 0...255.
    static func resize(_ image: RGBImage, width: Int, height: Int) -> [Float] {
        var out = [Float](repeating: 0, count: width * height * 3)
        let (sx, sy) = (Double(image.width) / Double(width), Double(image.height) / Double(height))
        for y in 0..<height {
            let fy = max(0, min(Double(image.height - 1), (Double(y) + 0.5) * sy - 0.5))
            let (y0, wy) = (Int(fy), Float(fy - fy.rounded(.down)))
            let y1 = min(y0 + 1, image.height - 1)
            for x in 0..<width {
                let fx = max(0, min(Double(image.width - 1), (Double(x) + 0.5) * sx - 0.5))
                let (x0, wx) = (Int(fx), Float(fx - fx.rounded(.down)))
                let x1 = min(x0 + 1, image.width - 1)
                for c in 0..<3 {
                    func at(_ yy: Int, _ xx: Int) -> Float { Float(image.pixels[(yy * image.width + xx) * 3 + c]) }
                    let top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
                    let bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
                    out[(y * width + x) * 3 + c] = top * (1 - wy) + bottom * wy
                }
            }
        }
        return out
    }

    /// Times `runs` forward passes of `size` after `warmup` untimed ones.
    public func run(_ size: BenchmarkSize, runs: Int, warmup: Int) throws -> BenchmarkResult {
        let (l, r) = try window(size)
        var times: [Double] = []
        var bestStages: [Double] = [], bestParts: [Double] = [], bestPartsCPU: [Double] = [], bestCPU = 0.0
        var range: ClosedRange<Float> = 0...0
        var executed = 0.0
        for index in 0..<(warmup + max(1, runs)) {
            let clock = StageClock()
            let start = DispatchTime.now().uptimeNanoseconds, cpu = StageClock.processCPUSeconds()
            let issuedBefore = BLAS.multiplyAdds
            let output = try network.forward(left: l, right: r, iters: size.iters, clock: clock)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let disparity = output.flow.data.map { abs($0) }
            range = (disparity.min() ?? 0)...(disparity.max() ?? 0)
            guard index >= warmup else { continue }
            if times.isEmpty || seconds < times.min()! {
                (bestStages, bestParts, bestPartsCPU) = (clock.seconds, clock.updateSeconds, clock.updateCPUSeconds)
                bestCPU = StageClock.processCPUSeconds() - cpu
                executed = 2 * Double(BLAS.multiplyAdds - issuedBefore)
            }
            times.append(seconds)
        }
        return BenchmarkResult(size: size, runs: times, stages: bestStages, updateParts: bestParts,
                               updatePartsCPU: bestPartsCPU, cpuSeconds: bestCPU,
                               flops: FlopCount(frames: size.frames, height: size.height, width: size.width,
                                                iters: size.iters),
                               executedFlops: executed, peakRSS: StageClock.peakResidentBytes(), disparityRange: range)
    }

    /// The best rate of `n`³ cblas_sgemm (2n³ FLOPs) over `repeats` runs after one warm-up, in GFLOP/s, with
    /// OpenBLAS's threads as the network uses them.
    public static func sgemmRate(n: Int = 2048, repeats: Int = 3) -> Double {
        let a = [Float](repeating: 1.0 / Float(n), count: n * n), b = [Float](repeating: 0.5, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        a.withUnsafeBufferPointer { ab in
        b.withUnsafeBufferPointer { bb in
        c.withUnsafeMutableBufferPointer { cb in
            for index in 0...repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                BLAS.sgemm(m: n, n: n, k: n, a: ab.baseAddress!, lda: n, b: bb.baseAddress!, ldb: n,
                           c: cb.baseAddress!, ldc: n)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if index > 0 { best = min(best, seconds) }
            }
        }}}
        return 2 * pow(Double(n), 3) / best / 1e9
    }
}
