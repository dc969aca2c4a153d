// The matrix products every layer reduces to, on OpenBLAS.
import CBLAS
import Dispatch
import Foundation
import Synchronization

/// Thin, typed entry points to OpenBLAS's sgemm.
///
/// Threads: OpenBLAS runs single-threaded and each large product is split into column (or row) blocks, one
/// per core of `ComputeThreads.count`, on the same threads as our element-wise loops (`parallelFor`). OpenBLAS's
/// own workers would spin between calls while those loops run, and the two pools would fight over the cores;
/// this way exactly one thread per core is ever busy. A block's values are the same as in the undivided product
/// (each element's K-sum is the same loop).
public enum BLAS {
    /// Set once, before the first product: OpenBLAS itself stays on one thread.
    @usableFromInline
    static let singleThreadedOpenBLAS: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Makes sure OpenBLAS is single-threaded before `serialSgemm` calls run side by side.
    @inlinable
    public static func prepareSerialCalls() { _ = singleThreadedOpenBLAS }

    /// Products below this many multiply-adds run on one thread: handing off costs more than it saves.
    @usableFromInline
    static let splitWork = 1 << 21

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
        _ = singleThreadedOpenBLAS
        let parts = m * n * k >= splitWork ? ComputeThreads.count : 1
        if parts <= 1 {
            serialSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, c: c, ldc: ldc)
            return
        }
        if n >= 64 * parts {
            // Column blocks of C: B's columns (rows of Bᵀ) and C's columns move together.
            let per = (n + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = part * per, count = min(n, start + per) - start
                guard count > 0 else { return }
                serialSgemm(transA: transA, transB: transB, m: m, n: count, k: k, alpha: alpha, a: a, lda: lda,
                            b: b + (transB ? start * ldb : start), ldb: ldb, beta: beta, c: c + start, ldc: ldc)
            }
        } else {
            // Row blocks of C: A's rows (columns of Aᵀ) and C's rows move together.
            let per = (m + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let start = part * per, count = min(m, start + per) - start
                guard count > 0 else { return }
                serialSgemm(transA: transA, transB: transB, m: count, n: n, k: k, alpha: alpha,
                            a: a + (transA ? start : start * lda), lda: lda, b: b, ldb: ldb,
                            beta: beta, c: c + start * ldc, ldc: ldc)
            }
        }
    }

    /// Multiply-adds issued to sgemm since the process started: the work actually run, which `dynstereo bench`
    /// sets beside torch's count of the reference's work (Winograd, the context computed once per scale and the
    /// skipped mask heads make ours smaller). One relaxed atomic add per call, about a microsecond apart at most.
    public static var multiplyAdds: Int { issued.load(ordering: .relaxed) }
    @usableFromInline
    static let issued = Atomic<Int>(0)

    /// One cblas_sgemm call on the calling thread, for callers that split the work across cores themselves.
    @inlinable
    public static func serialSgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        issued.add(m * n * k, ordering: .relaxed)
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
}
