// swift-tools-version:6.0
import PackageDescription

// The libFuzzer binary (docs/fuzzing.md). A package of its own so the main build never sees the fuzzer entry point
// (libFuzzer supplies `main`); it only links the target bodies, `FuzzTargets`, which live in the main package so
// the normal tests can replay the corpora through them. Built by `scripts/fuzz` with
// `--sanitize fuzzer --sanitize address` in `.build-fuzz`.
let package = Package(
    name: "corral-fuzz",
    dependencies: [.package(name: "corral", path: "..")],
    targets: [
        .executableTarget(name: "corral-fuzz", dependencies: [.product(name: "FuzzTargets", package: "corral")]),
    ],
    swiftLanguageModes: [.v6]
)
