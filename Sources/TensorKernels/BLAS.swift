// The matrix products every layer reduces to, on OpenBLAS.
import CBLAS

/// Thin, typed entry points to OpenBLAS's sgemm.
public enum BLAS {
    /// Sets OpenBLAS's own thread count; our element-wise loops never run while sgemm does,
    /// so both use every core without oversubscribing.
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// C[m, n] = alpha * op(A) * op(B) + beta * C, all row-major with the given leading dimensions.
    @inlinable
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
}
