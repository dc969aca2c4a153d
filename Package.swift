// swift-tools-version:6.0
import PackageDescription

// Modules, bottom to top:
//   C system libraries  CBLAS (OpenBLAS), CLibPNG (+ CPNGShim for setjmp), CLibPQ, CZlib, COpenSSL (libcrypto)
//   TensorKernels       dense float32 tensors, convolutions on sgemm, norms, resampling, named weights
//   VideoPlan           the run parameters and their rules, and the windows a video is cut into (network and queue)
//   Checkpoint          PyTorch .pth reader (zip + restricted pickle VM), the golden weight formula
//   Media               PNG, tar, NPY, colour maps, stereo sequences
//   DynamicStereo       the network (on the tensor kernels and the window planner only)
//   Inference           wiring the network to files: checkpoint loading, decoded RGB frames to tensors (CLI, worker)
//   JobQueue            PostgreSQL job queue (libpq), migrations, job state machine
//   HTTPServer          socket HTTP/1.1 server and the REST API
//   Worker              headless job runner
//   Benchmarks          `dynstereo bench` and `queue-bench`: network and queue figures; no library depends on it
//   dynstereo           the executable
let package = Package(
    name: "dynstereo",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dynstereo", targets: ["dynstereo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLibPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(name: "CPNGShim", dependencies: ["CLibPNG"]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "TensorKernels", dependencies: ["CBLAS"]),
        .target(name: "VideoPlan"),
        .target(name: "Checkpoint", dependencies: ["TensorKernels", "CZlib"]),
        .target(name: "Media", dependencies: ["TensorKernels", "CPNGShim", "CZlib"]),
        .target(name: "DynamicStereo", dependencies: ["TensorKernels", "VideoPlan"]),
        .target(name: "Inference", dependencies: ["DynamicStereo", "Checkpoint", "Media"]),
        .target(name: "JobQueue", dependencies: ["CLibPQ", "VideoPlan", .product(name: "Logging", package: "swift-log")]),
        .target(name: "HTTPServer", dependencies: ["JobQueue", "Media", "COpenSSL", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Worker", dependencies: ["JobQueue", "DynamicStereo", "Inference", "Media", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Benchmarks", dependencies: [
            "DynamicStereo", "Inference", "Media", "JobQueue", "TensorKernels",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "dynstereo", dependencies: [
            "Checkpoint", "DynamicStereo", "Inference", "Media", "JobQueue", "HTTPServer", "Worker", "Benchmarks",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorKernelsTests", dependencies: ["TestSupport", "TensorKernels"]),
        .testTarget(name: "VideoPlanTests", dependencies: ["VideoPlan"]),
        .testTarget(name: "CheckpointTests", dependencies: ["TestSupport", "Checkpoint"]),
        .testTarget(name: "MediaTests", dependencies: ["TestSupport", "Media"]),
        .testTarget(name: "DynamicStereoTests", dependencies: ["TestSupport", "DynamicStereo", "Inference", "Checkpoint", "Media"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "DynamicStereo"]),
        .testTarget(name: "JobQueueTests", dependencies: ["TestSupport", "JobQueue"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["TestSupport", "HTTPServer"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Media", "TensorKernels"]),
        .testTarget(name: "WorkerTests", dependencies: ["TestSupport", "Worker"]),
    ],
    swiftLanguageModes: [.v5]
)
