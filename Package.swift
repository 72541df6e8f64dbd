// swift-tools-version:6.2
import PackageDescription

// MARK: - Compiler settings

/// The kernels are compiled with -O3 even in debug builds: tests run the
/// numerical code at realistic speed, and the reference twins stay plain loops.
/// ISA-specific code is selected per function with `__attribute__((target))`,
/// never with a global -mavx2, so the library still runs on older CPUs.
/// Tools version 6.2 lets packages that depend on this one build with these
/// flags; Package@swift-6.0.swift is the same manifest without them, for
/// 6.0 and 6.1 toolchains (which refuse unsafe flags in a dependency).
let kernelCSettings: [CSetting] = [
    .unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=off"])
]

let swiftSettings: [SwiftSetting] = []

// MARK: - Package

let package = Package(
    name: "Keras",
    products: [
        .library(name: "Keras", targets: ["Keras"]),
        .library(name: "KerasIR", targets: ["KerasIR"]),
        .library(name: "KerasRuntime", targets: ["KerasRuntime"]),
        .executable(name: "keras-demo", targets: ["keras-demo"]),
        .executable(name: "kgraph", targets: ["kgraph"]),
        .executable(name: "keras-conformance", targets: ["keras-conformance"]),
        .executable(name: "keras-bench", targets: ["keras-bench"]),
        .executable(name: "keras-mpi-check", targets: ["keras-mpi-check"]),
    ],
    targets: [
        // MARK: Kernels
        .target(
            name: "CKernels",
            path: "Sources/CKernels",
            cSettings: kernelCSettings,
            linkerSettings: [.linkedLibrary("m"), .linkedLibrary("pthread")]
        ),

        // MARK: Compiler
        .target(
            name: "KerasIR",
            dependencies: ["CKernels"],
            path: "Sources/KerasIR",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KerasRuntime",
            dependencies: ["KerasIR", "CKernels"],
            path: "Sources/KerasRuntime",
            swiftSettings: swiftSettings
        ),

        // MARK: Front end
        .target(
            name: "Keras",
            dependencies: ["KerasIR", "KerasRuntime"],
            path: "Sources/Keras",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "KerasConformance",
            dependencies: ["Keras"],
            path: "Sources/KerasConformance",
            swiftSettings: swiftSettings
        ),

        // MARK: Tools
        .executableTarget(
            name: "keras-demo",
            dependencies: ["Keras", "CKernels"],
            path: "Sources/keras-demo",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keras-mpi-check",
            dependencies: ["Keras", "KerasRuntime"],
            path: "Sources/keras-mpi-check",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kgraph",
            dependencies: ["KerasIR", "KerasRuntime", "Keras"],
            path: "Sources/kgraph",
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "keras-conformance",
            dependencies: ["KerasConformance"],
            path: "Sources/keras-conformance",
            swiftSettings: swiftSettings
        ),

        // MARK: Benchmarks
        .executableTarget(
            name: "keras-bench",
            dependencies: ["Keras", "KerasRuntime", "CKernels"],
            path: "Benchmarks/keras-bench",
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .target(
            name: "CMallocCounter",
            path: "Tests/Support/CMallocCounter"
        ),
        .target(
            name: "TestSupport",
            dependencies: ["KerasIR"],
            path: "Tests/Support/TestSupport"
        ),
        .testTarget(
            name: "CKernelsTests",
            dependencies: ["CKernels", "KerasIR"],
            path: "Tests/CKernelsTests"
        ),
        .testTarget(
            name: "KerasIRTests",
            dependencies: ["KerasIR", "KerasRuntime", "TestSupport"],
            path: "Tests/KerasIRTests"
        ),
        .testTarget(
            name: "KerasRuntimeTests",
            dependencies: ["KerasIR", "KerasRuntime", "CMallocCounter", "TestSupport"],
            path: "Tests/KerasRuntimeTests"
        ),
        .testTarget(
            name: "KerasTests",
            dependencies: ["Keras", "KerasConformance", "CMallocCounter"],
            path: "Tests/KerasTests"
        ),
        .testTarget(
            name: "ToolTests",
            dependencies: ["keras-demo", "keras-bench", "keras-conformance", "Keras"],
            path: "Tests/ToolTests"
        ),
        // Mutation fuzzing of the file readers; runs only with KERAS_FUZZ_SECONDS set.
        .testTarget(
            name: "FuzzTests",
            dependencies: ["Keras", "KerasConformance"],
            path: "Tests/FuzzTests"
        ),
        .testTarget(
            name: "kgraphTests",
            dependencies: ["kgraph"],
            path: "Tests/kgraphTests"
        ),
    ],
    swiftLanguageModes: [.v5]
)
