/// The fuzz targets: one body per parser, shared by the libFuzzer binary (`Fuzz/`, built by `scripts/fuzz` with
/// `-sanitize=fuzzer,address`) and by the regression test that replays the seed corpora and every crash reproducer
/// without sanitizers (Tests/FuzzTests).
///
/// A body returns when the input was handled (accepted or refused), and throws `FuzzFailure` when a property the
/// parser promises does not hold. Crashes, traps and sanitizer reports end the process on their own.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Profile YAML (with `extends` files) → `ProfileLoader` → `Profile` → JSON round trip → argv.
    case profile
    /// A live config as a peer or `live.json` sends it (JSON) → the checks `prepareIncoming` makes → argv.
    case liveconfig
    /// Bytes from QEMU → `QMPStreamDecoder`, whole and in chunks.
    case qmp
    /// Bytes from the daemon → `HTTPResponseDecoder`, whole and in chunks.
    case http
    /// An HTTP request (method, path, headers, body) → the daemon's router over a fake control.
    case api
    /// dnsmasq lease files and the address syntax of managed networks.
    case leases
    /// `corral import`'s documents: the XML parser, then libvirt domain XML and OVF envelopes → profile → YAML.
    case importxml
    /// OVA packages: tar headers → the member list.
    case tar

    /// What libFuzzer's `-max_len` is set to: room for every seed, small enough to stay fast.
    public var maxLength: Int {
        switch self {
        case .profile, .liveconfig: return 16 * 1024
        case .qmp, .http, .api, .leases, .tar: return 8 * 1024
        case .importxml: return 16 * 1024
        }
    }

    /// Runs the body synchronously: for the fuzzer's thread, never from Swift concurrency (the `api` body
    /// blocks on its task).
    public func run(_ data: [UInt8]) throws(FuzzFailure) {
        switch self {
        case .profile: try ProfileFuzz.run(data)
        case .liveconfig: try LiveConfigFuzz.run(data)
        case .qmp: try QMPFuzz.run(data)
        case .http: try HTTPFuzz.run(data)
        case .api: try APIFuzz.runBlocking(data)
        case .leases: try LeasesFuzz.run(data)
        case .importxml: try ImportFuzz.run(data)
        case .tar: try TarFuzz.run(data)
        }
    }

    /// Runs the body from Swift concurrency (the regression test).
    public func check(_ data: [UInt8]) async throws(FuzzFailure) {
        if self == .api {
            try await APIFuzz.run(data)
        } else {
            try run(data)
        }
    }
}

/// A property a parser promises did not hold for an input.
public struct FuzzFailure: Error, Sendable, CustomStringConvertible {
    public var property: String
    public var detail: String

    public init(_ property: String, _ detail: String = "") {
        self.property = property
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? property : "\(property): \(detail)" }
}

/// `guard condition else { throw … }` in one line.
func require(_ condition: Bool, _ property: String, _ detail: @autoclosure () -> String = "")
    throws(FuzzFailure)
{
    if !condition { throw FuzzFailure(property, detail()) }
}

/// Splits an input into chunks of 1…`maxChunk` bytes, the sizes drawn from a generator seeded by the input itself:
/// the same input always splits the same way, and different inputs split differently.
enum Chunks {
    static func split(_ data: [UInt8], maxChunk: Int = 17) -> [ArraySlice<UInt8>] {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data { state = (state ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var chunks: [ArraySlice<UInt8>] = []
        var start = 0
        while start < data.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let size = 1 + Int((state >> 33) % UInt64(maxChunk))
            let end = min(data.count, start + size)
            chunks.append(data[start..<end])
            start = end
        }
        return chunks
    }
}
