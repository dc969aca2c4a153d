// swift-tools-version:6.0
import PackageDescription

// Modules, bottom to top:
//   C system libraries  CBLAS (OpenBLAS), CLibPNG (+ CPNGShim for setjmp), CJPEGShim (libjpeg behind setjmp),
//                       CLibPQ, CZlib, COpenSSL (libcrypto);
//                       CSpawnShim (glibc's pipe2 and addclosefrom_np for VideoIO's confined processes)
//   TensorKernels       dense float32 tensors, convolutions on sgemm, norms, resampling, named weights
//   VideoPlan           the run parameters and their rules, and the windows a video is cut into (network and queue)
//   Checkpoint          PyTorch .pth reader (zip + restricted pickle VM) and writer, the golden weight formula
//   Media               PNG, tar, NPY, colour maps, stereo sequences, the random-dot demo clip
//   DynamicStereo       the network (on the tensor kernels and the window planner only)
//   Inference           wiring the network to files: checkpoint loading, decoded RGB frames to tensors (CLI, worker)
//   VideoIO             video files through a confined ffmpeg (probe, decode, MP4), resolution cap, PLY, result writer
//   JobQueue            PostgreSQL job queue (libpq), migrations, job state machine
//   HTTPTransport       socket HTTP/1.1 server: parser, multipart, connections, handler threads (knows no application)
//   APIKeys             API key secrets, SHA-256 through libcrypto, checking a presented key (keys stored by JobQueue)
//   JobsAPI             the REST API on HTTPTransport: routes, views, metrics, OpenAPI, job-store and frame adapters
//   Worker              headless job runner
//   Evaluation          the reference's disparity metrics (EPE, temporal EPE) against ground truth files
//   Benchmarks          `dynstereo bench`, `queue-bench` and `volume-bench`: network, queue and large-job figures;
//                       no library depends on it
//   dynstereo           the executable
// Build tools: the EmbedMigrations and EmbedOpenAPI plugins (through the TextEmbedder tool) compile
// migrations/*.sql and openapi.yaml into the modules that use them, so the executable carries them alone.
// The network's own loops (Winograd transforms, GRU gates, packing) are a third of its CPU time: on x86-64 the two
// modules that hold them are compiled for AVX2 (Haswell and later, every AMD Zen), twice the SSE width of the
// baseline target. DYNSTEREO_PORTABLE=1 at build time keeps the baseline for older processors.
#if arch(x86_64)
// DYNSTEREO_AVX2 tells TensorKernels' `BuildTarget` which features it was compiled for, so that the executable
// can refuse an older processor with a message before the first AVX2 instruction would stop it with SIGILL.
let vectorSettings: [SwiftSetting] = Context.environment["DYNSTEREO_PORTABLE"] == "1" ? []
    : [.unsafeFlags(["-target-cpu", "haswell"]), .define("DYNSTEREO_AVX2")]
#else
let vectorSettings: [SwiftSetting] = []
#endif

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
        .target(name: "CJPEGShim", linkerSettings: [.linkedLibrary("jpeg")]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "TensorKernels", dependencies: ["CBLAS"], swiftSettings: vectorSettings),
        .target(name: "VideoPlan"),
        .target(name: "Checkpoint", dependencies: ["TensorKernels", "CZlib"]),
        .target(name: "Media", dependencies: ["TensorKernels", "CPNGShim", "CJPEGShim", "CZlib"]),
        .target(name: "DynamicStereo", dependencies: ["TensorKernels", "VideoPlan"], swiftSettings: vectorSettings),
        .target(name: "Inference", dependencies: ["DynamicStereo", "TensorKernels", "Checkpoint", "Media"]),
        .target(name: "CSpawnShim"),
        .target(name: "VideoIO", dependencies: ["CSpawnShim", "Media", "TensorKernels", "VideoPlan"]),
        .target(name: "JobQueue", dependencies: ["CLibPQ", "VideoPlan", .product(name: "Logging", package: "swift-log")],
                plugins: ["EmbedMigrations"]),
        .target(name: "HTTPTransport", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(name: "APIKeys", dependencies: ["JobQueue", "COpenSSL"]),
        .target(name: "JobsAPI", dependencies: ["HTTPTransport", "JobQueue", "Media", "APIKeys", "VideoIO", .product(name: "Logging", package: "swift-log")],
                plugins: ["EmbedOpenAPI"]),
        .target(name: "Worker", dependencies: ["JobQueue", "DynamicStereo", "Inference", "Media", "VideoIO", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Evaluation", dependencies: ["Media"]),
        .target(name: "Benchmarks", dependencies: [
            "DynamicStereo", "Inference", "Media", "JobQueue", "TensorKernels", "Worker",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "dynstereo", dependencies: [
            "Checkpoint", "DynamicStereo", "Inference", "Media", "JobQueue", "APIKeys", "HTTPTransport", "JobsAPI", "Worker",
            "Evaluation", "VideoIO", "Benchmarks",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "TextEmbedder", path: "Plugins/TextEmbedder"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["TextEmbedder"]),
        .plugin(name: "EmbedOpenAPI", capability: .buildTool(), dependencies: ["TextEmbedder"]),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorKernelsTests", dependencies: ["TestSupport", "TensorKernels"]),
        .testTarget(name: "VideoPlanTests", dependencies: ["VideoPlan"]),
        .testTarget(name: "CheckpointTests", dependencies: ["TestSupport", "Checkpoint"]),
        .testTarget(name: "MediaTests", dependencies: ["TestSupport", "Media"]),
        .testTarget(name: "DynamicStereoTests", dependencies: ["TestSupport", "DynamicStereo", "Inference", "Checkpoint", "Media"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "DynamicStereo"]),
        .testTarget(name: "JobQueueTests", dependencies: ["TestSupport", "QueueTestSupport", "JobQueue"]),
        .target(name: "QueueTestSupport", dependencies: ["CLibPQ", "JobQueue", "TestSupport"], path: "Tests/QueueTestSupport"),
        .target(name: "HTTPTestSupport", dependencies: ["HTTPTransport"], path: "Tests/HTTPTestSupport"),
        .testTarget(name: "HTTPTransportTests", dependencies: ["TestSupport", "HTTPTestSupport", "HTTPTransport"]),
        .testTarget(name: "APIKeysTests", dependencies: ["TestSupport", "APIKeys", "JobQueue"]),
        .testTarget(name: "JobsAPITests", dependencies: ["TestSupport", "QueueTestSupport", "HTTPTestSupport", "HTTPTransport", "JobsAPI", "APIKeys", "JobQueue", "Media", "VideoIO"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "QueueTestSupport", "Media", "TensorKernels", "Checkpoint", "DynamicStereo", "Inference", "VideoIO"]),
        .testTarget(name: "VideoIOTests", dependencies: ["TestSupport", "VideoIO", "Media", "TensorKernels", "VideoPlan"]),
        .testTarget(name: "WorkerTests", dependencies: ["TestSupport", "QueueTestSupport", "Worker", "JobsAPI", "HTTPTestSupport", "HTTPTransport", "VideoIO", "Media"]),
        .testTarget(name: "EvaluationTests", dependencies: ["TestSupport", "Evaluation", "Media"]),
    ],
    swiftLanguageModes: [.v5]
)
