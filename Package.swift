// swift-tools-version:6.0
import PackageDescription

// Layering (README "How it is built"):
//   JSON  ─ pure JSON value type + canonical encoder (used by argv and QMP)
//   CorralModel ─ pure values the daemon and its clients share: requests, statuses, errors, the profile enums
//   UnixSockets ─ connecting and listening AF_UNIX stream sockets (the one sockaddr_un builder)
//   CJSONC ─ json-c headers;  QMP ─ json-c codec, stream decoder, QMPClient (effects: one socket)
//   Profiles ─ pure YAML → validated Profile;  QEMUCommand ─ pure LiveConfig → argv + device props
//   DiskConversion ─ pure parts of `corral convert`: formats, qemu-img arguments, progress parsing, image checks
//   Import ─ pure bounded XML parser; libvirt domain XML and OVF → Profile + notes (`corral import`)
//   CorralCore ─ pure policies, plans and state machines (lifecycle, restart, balloon, KSM, admission, hotplug,
//                migration): no I/O, no Foundation file/process APIs, no effect modules
//   CorralControl ─ the protocols the daemon offers (VMControl, HotplugControl, TuningControl, MigrationControl)
//                   and the migration peer protocol: what API serves and what corrald wires to the Supervisor
//   LogTail ─ following a growing log file (serial console, tests)
//   GuestAgent ─ qemu-guest-agent client over the VM's agent.sock (effects: one socket per call)
//   HostDevices ─ host PCI devices through sysfs and rtnetlink: scan, rules, vfio-pci binding, SR-IOV VFs (no
//                 Foundation: `corral-hostprep`, the same code run inside a vIOMMU test guest, links only this)
//   Supervisor ─ processes, state dirs, the foreground runner (effects at the edge)
//   CorralWire ─ API request/response types and CorralClient over a small HTTP/1.1 client (no server, no NIO)
//   API ─ HTTP+JSON (Hummingbird) over CorralControl, the HTTP migration peer (no Supervisor)
//   CorralCLI ─ argument-parser commands, a client of the API only;  corral ─ the CLI executable
//   corrald ─ the daemon executable;  corral-local ─ check/argv/run/convert/import/qmp --socket, which `corral` execs
let package = Package(
    name: "corral",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "corral", targets: ["corral"]),
        .executable(name: "corrald", targets: ["corrald"]),
        .executable(name: "corral-local", targets: ["corral-local"]),
        .executable(name: "corral-hostprep", targets: ["corral-hostprep"]),
        .library(name: "QMP", targets: ["QMP"]),
        .library(name: "Profiles", targets: ["Profiles"]),
        .library(name: "QEMUCommand", targets: ["QEMUCommand"]),
        // The fuzz target bodies, for the libFuzzer package in Fuzz/ (scripts/fuzz).
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // WebSocket upgrade on the API's listeners: `corral console --attach`, `corral vnc`.
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        // Already in the graph through Hummingbird; named for the API's mutual TLS listener.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Already in the graph through Hummingbird; named for the socket-activated listener (ServerBootstrap on a
        // passed descriptor, ServerQuiescingHelper) and the fuzz targets (NIOEmbedded's channel, HTTPTypes' fields).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // GET /metrics: figures are written through swift-metrics' handler API (CoreMetrics), into swift-prometheus'
        // collector registry, which renders the exposition format.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CJSONC",
            pkgConfig: "json-c",
            providers: [.apt(["libjson-c-dev"])]
        ),
        .target(name: "JSON"),
        // What the daemon and its clients both speak: pure values, no I/O, no Foundation.
        .target(name: "CorralModel", dependencies: ["JSON"]),
        // Connecting and listening AF_UNIX stream sockets: the one sockaddr_un builder.
        .target(name: "UnixSockets", dependencies: ["CSupport"]),
        // Linux calls Swift cannot import directly (variadic syscall(2), spawn macros).
        .target(name: "CSupport"),
        .target(name: "QMP", dependencies: [
            "CJSONC", "JSON", "UnixSockets",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Profiles", dependencies: [
            "CorralModel",
            .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "QEMUCommand", dependencies: ["Profiles", "CorralModel", "JSON"]),
        // Pure: a bounded XML parser, libvirt domain XML and OVF envelopes → Profile plus notes (`corral import`).
        .target(name: "Import", dependencies: ["Profiles", "CorralModel"]),
        // Pure decisions: takes observations, returns actions. Nothing here spawns, opens or sleeps.
        .target(name: "CorralCore", dependencies: ["CorralModel", "JSON", "Profiles", "QEMUCommand"]),
        .target(name: "CorralControl", dependencies: ["CorralModel", "JSON", "Profiles", "QEMUCommand"]),
        // Disk conversion's decisions (formats, qemu-img argument lists, json: specs, progress parsing, what an image
        // may refer to): pure, used by the CLI's validation and by Supervisor's DiskConverter.
        .target(name: "DiskConversion", dependencies: ["CorralModel", "JSON"]),
        .target(name: "LogTail"),
        .target(name: "GuestAgent", dependencies: ["CorralCore", "QMP", "JSON", "UnixSockets"]),
        .target(name: "HostDevices", dependencies: ["CorralModel"]),
        .executableTarget(name: "corral-hostprep", dependencies: ["HostDevices", "CorralModel"]),
        .target(name: "Supervisor", dependencies: [
            "Cluster", "HostDevices",
            "QMP", "GuestAgent", "Profiles", "QEMUCommand", "CorralModel", "CorralCore", "CorralControl", "LogTail", "JSON",
            "CSupport", "DiskConversion",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // What crosses the wire between a client and the daemon, and the client itself: no server, no NIO.
        // The cluster on etcd: the store protocol, etcd's v3 JSON gateway over CorralWire's client, ownership rules.
        .target(name: "Cluster", dependencies: [
            "CorralWire", "CorralModel",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // OpenSSL for the client side of the API's mutual TLS (libssl-dev).
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "CorralWire", dependencies: ["CorralModel", "JSON", "UnixSockets", "CTLS"]),
        .target(name: "API", dependencies: [
            "CorralWire", "CorralModel", "CorralControl", "LogTail", "JSON", "UnixSockets",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOExtras", package: "swift-nio-extras"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        // The API's mutual TLS listener: its own module, so the fuzz targets (which link API) carry no TLS library.
        .target(name: "APITLS", dependencies: [
            "API",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The CLI is only a client: no server, no supervisor, no profile loader. `corral daemon` execs
        // `corrald`; `corral check|argv|run|qmp --socket` exec `corral-local`. Each `corral` call then loads
        // (and scans the type metadata of) only the code a client needs.
        .target(name: "CorralCLI", dependencies: [
            "CorralWire", "CorralModel", "JSON", "DiskConversion",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "corral", dependencies: ["CorralCLI"]),
        .executableTarget(name: "corral-local", dependencies: [
            "CorralCLI", "CorralModel", "CorralCore", "Supervisor", "LogTail", "QMP", "Profiles", "QEMUCommand", "JSON",
            "DiskConversion",
            "Import",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/CorralLocal"),
        .executableTarget(name: "corrald", dependencies: [
            "CorralCLI", "CorralWire", "CorralModel", "CorralControl", "API", "APITLS", "Cluster", "Supervisor", "UnixSockets",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Benchmark harness used by scripts/bench-*; not part of the product.
        .executableTarget(name: "corral-bench", dependencies: [
            "QMP", "JSON", "UnixSockets", "CorralModel", "CorralCore", "CorralControl", "Supervisor", "Profiles",
            "QEMUCommand", "Cluster",
        ], path: "Sources/CorralBench"),

        // The bodies of the fuzz targets (docs/fuzzing.md): the libFuzzer binary in Fuzz/ and FuzzTests both run them.
        .target(name: "FuzzTargets", dependencies: [
            "Profiles", "QEMUCommand", "QMP", "JSON", "CorralModel", "CorralWire", "CorralControl", "API", "Import",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Test-only: the gate that keeps system tests from booting every TCG guest at once (GuestBootSlots).
        .target(name: "TestSupport"),

        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "CorralModelTests", dependencies: ["CorralModel"]),
        .testTarget(name: "DiskConversionTests", dependencies: ["DiskConversion", "CorralModel", "JSON"]),
        .testTarget(name: "QMPTests", dependencies: ["QMP", "JSON", "UnixSockets"]),
        .testTarget(name: "GuestAgentTests", dependencies: ["GuestAgent", "CorralCore", "JSON", "UnixSockets"]),
        .testTarget(name: "ProfilesTests", dependencies: ["Profiles", "CorralModel"]),
        .testTarget(name: "ImportTests", dependencies: ["Import", "Profiles", "QEMUCommand", "CorralModel", "JSON"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "QEMUCommandTests", dependencies: ["QEMUCommand", "Profiles", "CorralModel", "JSON"]),
        .testTarget(name: "CorralWireTests", dependencies: ["CorralWire", "CorralModel", "JSON", "UnixSockets"]),
        .testTarget(name: "CorralCLITests", dependencies: ["CorralCLI", "CorralModel"]),
        .testTarget(name: "CorralCoreTests", dependencies: ["CorralCore", "CorralModel", "Profiles", "QEMUCommand", "JSON"]),
        .testTarget(name: "APITests", dependencies: [
            "API", "APITLS", "CorralWire", "CorralModel", "CorralControl", "Supervisor", "LogTail", "Profiles", "QEMUCommand",
            "JSON", "UnixSockets", "TestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            // OpenAPITests reads docs/openapi.yaml.
            .product(name: "Yams", package: "Yams"),
        ]),
        .testTarget(name: "SupervisorTests", dependencies: [
            "Supervisor", "HostDevices", "GuestAgent", "DiskConversion", "CorralCore", "CorralControl", "CorralModel", "Profiles", "QEMUCommand", "QMP", "JSON",
        ]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "ClusterTests", dependencies: [
            "Cluster", "CorralModel", "CorralWire", "Supervisor",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "SystemTests", dependencies: [
            "Supervisor", "GuestAgent", "CorralWire", "CorralCore", "CorralControl", "LogTail", "CorralModel", "QMP", "Profiles",
            "QEMUCommand", "JSON", "UnixSockets", "DiskConversion", "TestSupport",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
