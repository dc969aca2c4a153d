import TensorKernels
import TestSupport

/// A reproducible tensor of values in [-1, 1) for kernel tests, one stream per seed.
func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor(shape: shape) { buffer in
        for i in 0..<buffer.count { buffer[i] = generator.uniform(-1, 1) }
    }
}
