// swift-tools-version:6.0
import PackageDescription

// Layering (README "How it is built"):
//   JSON  ─ pure JSON value type + canonical encoder (used by argv and QMP)
//   UnixSockets ─ connecting AF_UNIX stream sockets (the one sockaddr_un builder)
//   CJSONC ─ json-c headers;  QMP ─ json-c codec, stream decoder, QMPClient (effects: one socket)
//   Profiles ─ pure YAML → validated Profile;  QEMUCommand ─ pure LiveConfig → argv + device props
//   Supervisor ─ processes, state dirs, the foreground runner (effects at the edge)
//   CorralWire ─ API request/response types and CorralClient over a small HTTP/1.1 client (no server, no NIO)
//   API ─ HTTP+JSON (Hummingbird) over VMControl, the migration peer
//   CorralCLI ─ argument-parser commands;  corral ─ the CLI executable;  corrald ─ the daemon executable
let package = Package(
    name: "corral",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "corral", targets: ["corral"]),
        .executable(name: "corrald", targets: ["corrald"]),
        .library(name: "QMP", targets: ["QMP"]),
        .library(name: "Profiles", targets: ["Profiles"]),
        .library(name: "QEMUCommand", targets: ["QEMUCommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CJSONC",
            pkgConfig: "json-c",
            providers: [.apt(["libjson-c-dev"])]
        ),
        .target(name: "JSON"),
        // Connecting AF_UNIX stream sockets: the one sockaddr_un builder.
        .target(name: "UnixSockets"),
        // Linux calls Swift cannot import directly (variadic syscall(2), spawn macros).
        .target(name: "CSupport"),
        .target(name: "QMP", dependencies: [
            "CJSONC", "JSON", "UnixSockets",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Profiles", dependencies: [
            .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "QEMUCommand", dependencies: ["Profiles", "JSON"]),
        .target(name: "Supervisor", dependencies: [
            "QMP", "Profiles", "QEMUCommand", "JSON", "CSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // What crosses the wire between a client and the daemon, and the client itself: no server, no NIO.
        .target(name: "CorralWire", dependencies: ["Supervisor", "Profiles", "JSON", "UnixSockets"]),
        .target(name: "API", dependencies: [
            "CorralWire", "Supervisor", "Profiles", "JSON",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The CLI links no server: `corral daemon` execs `corrald`, which does.
        .target(name: "CorralCLI", dependencies: [
            "CorralWire", "Supervisor", "QMP", "Profiles", "QEMUCommand", "JSON",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "corral", dependencies: ["CorralCLI"]),
        .executableTarget(name: "corrald", dependencies: [
            "CorralCLI", "CorralWire", "API", "Supervisor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Benchmark harness used by scripts/bench-*; not part of the product.
        .executableTarget(name: "corral-bench", dependencies: [
            "QMP", "JSON", "UnixSockets", "Supervisor", "Profiles", "QEMUCommand",
        ], path: "Sources/CorralBench"),

        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "QMPTests", dependencies: ["QMP", "JSON"]),
        .testTarget(name: "ProfilesTests", dependencies: ["Profiles"]),
        .testTarget(name: "QEMUCommandTests", dependencies: ["QEMUCommand", "Profiles", "JSON"]),
        .testTarget(name: "CorralWireTests", dependencies: ["CorralWire", "Supervisor", "JSON"]),
        .testTarget(name: "APITests", dependencies: [
            "API", "CorralWire", "Supervisor", "Profiles", "JSON",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "Profiles", "QEMUCommand", "JSON"]),
        .testTarget(name: "SystemTests", dependencies: ["Supervisor", "QMP", "Profiles", "QEMUCommand", "JSON"]),
    ],
    swiftLanguageModes: [.v6]
)
