import TensorKernels

/// A reproducible tensor of values in [-1, 1) for kernel tests (a linear congruential stream per seed).
func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var state = seed
    return Tensor(shape: shape) { buffer in
        for i in 0..<buffer.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            buffer[i] = Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
    }
}
