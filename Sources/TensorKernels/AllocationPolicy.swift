// How the process's allocator treats the large, short-lived tensors of a forward pass.

#if os(Linux)
/// glibc's mallopt(3); <malloc.h> is not part of the Glibc module. Both arguments and the result are C ints.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// <malloc.h>: M_TRIM_THRESHOLD and M_MMAP_MAX.
private let trimThreshold: Int32 = -1, mmapMax: Int32 = -4
#endif

/// The allocator settings the network runs best with.
///
/// Every iteration allocates and frees tensors of tens to hundreds of megabytes. glibc serves each allocation
/// above 32 MB with a fresh mmap and unmaps it on free, so every page of it is faulted in and zeroed by the
/// kernel again in the next iteration: a fifth of the CPU time of a 480x640 window went to the kernel. Keeping
/// freed memory in the heap lets the next iteration reuse it as it is.
///
/// The settings hold for the whole process, so the commands that run the network choose them at start
/// (`dynstereo infer`, `work`, `bench`), not the network itself.
public enum AllocationPolicy {
    /// Applies the settings once (later reads do nothing): no mmap for large blocks, and freed memory at the
    /// top of the heap returned to the system only beyond 2 GB.
    public static let keepFreedMemory: Void = {
        #if os(Linux)
        _ = glibcMallopt(mmapMax, 0)
        _ = glibcMallopt(trimThreshold, Int32.max)
        #endif
    }()
}
