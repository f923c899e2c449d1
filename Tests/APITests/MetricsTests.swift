import API
import CorralModel
import CorralWire
import Foundation
import Hummingbird
import HummingbirdTesting
import Supervisor
import Testing
import UnixSockets

/// `GET /metrics`: the rendering of a snapshot (names, labels, escaping, values), the route, and promtool's verdict.
@Suite struct MetricsTests {
    /// The exposition text read back: each sample by its series as written (`name{label="value",…}`, labels sorted),
    /// and each family's TYPE and HELP.
    struct Exposition {
        var samples: [String: Double] = [:]
        var types: [String: String] = [:]
        var helps: [String: String] = [:]

        init(_ text: String) {
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ", maxSplits: 3)
                if line.hasPrefix("# TYPE "), words.count == 4 {
                    types[String(words[2])] = String(words[3])
                } else if line.hasPrefix("# HELP "), words.count >= 3 {
                    helps[String(words[2])] = words.count == 4 ? String(words[3]) : ""
                } else if let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) {
                    samples[String(line[..<space])] = value
                }
            }
        }

        /// Series of family `name`.
        func series(_ name: String) -> [String: Double] {
            samples.filter { $0.key == name || $0.key.hasPrefix(name + "{") }
        }
    }

    /// A live daemon's `GET /metrics` over its Unix socket, read back.
    static func scrape(socket: String) async throws -> Exposition {
        let connection = try StreamSocket.connect(path: socket)
        defer { connection.close() }
        try connection.write(Array("GET /metrics HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n\r\n".utf8))
        var reply: [UInt8] = []
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while case let bytes = try connection.read(deadline: deadline), !bytes.isEmpty { reply += bytes }
        let text = String(decoding: reply, as: UTF8.self)
        try #require(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(300))")
        return Exposition(text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n"))
    }

    static func render(_ snapshot: MetricsSnapshot = FakeControl.sampleMetrics) -> Exposition {
        Exposition(MetricsExposition.render(snapshot, scrapeSeconds: 0.25, version: "9.8.7"))
    }

    @Test func everyFigureOfTheSnapshotHasItsSeries() {
        let text = Self.render()
        let expected: [String: Double] = [
            #"corral_build_info{version="9.8.7"}"#: 1,
            "corral_scrape_duration_seconds": 0.25,
            "corral_scrape_errors_total": 5,
            #"corral_vm_state{state="migrating",vm="web"}"#: 1,
            #"corral_vm_state{state="running",vm="web"}"#: 0,
            #"corral_vm_state{state="stopped",vm="db"}"#: 1,
            #"corral_vm_scrape_success{vm="web"}"#: 1,
            #"corral_vm_scrape_success{vm="db"}"#: 0,
            #"corral_vm_vcpus{vm="web"}"#: 2,
            #"corral_vm_vcpus_max{vm="web"}"#: 4,
            #"corral_vm_memory_bytes{vm="web"}"#: 1_073_741_824,
            #"corral_vm_memory_max_bytes{vm="web"}"#: 2_147_483_648,
            #"corral_vm_balloon_actual_bytes{vm="web"}"#: 805_306_368,
            #"corral_vm_balloon_target_bytes{vm="web"}"#: 805_306_368,
            #"corral_vm_guest_memory_total_bytes{vm="web"}"#: 734_003_200,
            #"corral_vm_guest_memory_free_bytes{vm="web"}"#: 314_572_800,
            #"corral_vm_guest_memory_available_bytes{vm="web"}"#: 524_288_000,
            #"corral_vm_guest_memory_disk_caches_bytes{vm="web"}"#: 104_857_600,
            #"corral_vm_guest_memory_stats_timestamp_seconds{vm="web"}"#: 1_764_040_485,
            #"corral_vm_guest_swap_in_bytes_total{vm="web"}"#: 4096,
            #"corral_vm_guest_swap_out_bytes_total{vm="web"}"#: 8192,
            #"corral_vm_guest_page_faults_total{kind="major",vm="web"}"#: 12,
            #"corral_vm_guest_page_faults_total{kind="minor",vm="web"}"#: 3456,
            #"corral_vm_disk_read_bytes_total{disk="root",vm="web"}"#: 52_428_800,
            #"corral_vm_disk_written_bytes_total{disk="root",vm="web"}"#: 1_048_576,
            #"corral_vm_disk_read_operations_total{disk="root",vm="web"}"#: 1200,
            #"corral_vm_disk_write_operations_total{disk="root",vm="web"}"#: 64,
            #"corral_vm_disk_flush_operations_total{disk="root",vm="web"}"#: 7,
            #"corral_vm_disk_read_time_seconds_total{disk="root",vm="web"}"#: 0.25,
            #"corral_vm_disk_write_time_seconds_total{disk="root",vm="web"}"#: 0.125,
            #"corral_vm_disk_flush_time_seconds_total{disk="root",vm="web"}"#: 0,
            #"corral_vm_nic_receive_bytes_total{device="cr1a2b3c4d-net1",nic="net1",vm="web"}"#: 9000,
            #"corral_vm_nic_receive_packets_total{device="cr1a2b3c4d-net1",nic="net1",vm="web"}"#: 90,
            #"corral_vm_nic_transmit_bytes_total{device="cr1a2b3c4d-net1",nic="net1",vm="web"}"#: 4000,
            #"corral_vm_nic_transmit_packets_total{device="cr1a2b3c4d-net1",nic="net1",vm="web"}"#: 40,
            #"corral_vm_migration_transferred_bytes{vm="web"}"#: 1_000_000,
            #"corral_vm_migration_remaining_bytes{vm="web"}"#: 3_000_000,
            #"corral_vm_migration_total_bytes{vm="web"}"#: 4_000_000,
            #"corral_vm_migration_expected_downtime_seconds{vm="web"}"#: 0.04,
            #"corral_vm_restarts_total{vm="web"}"#: 2,
            #"corral_vm_uptime_seconds{vm="web"}"#: 12.5,
            "corral_host_cpus": 4,
            "corral_host_vcpus_committed": 3,
            "corral_host_vcpu_commit_ratio": 0.75,
            "corral_host_vcpu_commit_ratio_limit": 4,
            "corral_host_memory_bytes": 8_589_934_592,
            "corral_host_memory_available_bytes": 5_368_709_120,
            "corral_host_memory_committed_bytes": 1_610_612_736,
            "corral_host_memory_commit_ratio": 0.1875,
            "corral_host_pinned_memory_bytes": 0,
            "corral_host_balloon_bytes": 402_653_184,
            "corral_host_ksm_running": 1,
            "corral_host_ksm_pages_shared": 10,
            "corral_host_ksm_pages_sharing": 1200,
            "corral_host_ksm_saved_bytes": 4_915_200,
            #"corral_migrations_total{result="completed"}"#: 3,
            #"corral_migrations_total{result="failed"}"#: 1,
            "corral_migration_last_downtime_seconds": 0.042,
        ]
        for (series, value) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(text.samples[series] == value, "\(series)")
        }
        // One state series per state and VM, exactly one of them 1.
        #expect(text.series("corral_vm_state").count == 2 * VMState.allCases.count)
        #expect(text.series("corral_vm_state").filter { $0.key.contains(#"vm="web""#) }.values.reduce(0, +) == 1)
    }

    @Test func whatIsNotKnownHasNoSeries() {
        let text = Self.render()
        // The user-mode NIC has no counters; the stopped VM no live figures; a stat the guest does not keep none.
        #expect(text.samples.keys.filter { $0.contains(#"nic="net0""#) } == [])
        #expect(text.samples.keys.filter { $0.contains(#"vm="db""#) && $0.contains("_disk_") } == [])
        #expect(text.samples.keys.filter { $0.contains(#"vm="db""#) && $0.contains("balloon") } == [])
        #expect(text.samples.keys.filter { $0.contains("htlb") } == [])
        // No memory overcommit limit, no actual downtime yet.
        #expect(text.series("corral_host_memory_commit_ratio_limit") == [:])
        #expect(text.series("corral_vm_migration_downtime_seconds") == [:])
    }

    /// Label values are escaped as the format wants: `"` and `\` with a backslash, a newline as `\n`.
    @Test func labelValuesAreEscaped() {
        let text = MetricsExposition.render(FakeControl.sampleMetrics, scrapeSeconds: 0)
        #expect(text.contains(#"corral_vm_disk_read_bytes_total{disk="odd \"id\"\\with\nnewline",vm="web"} 1"# + "\n"))
        #expect(!text.contains("with\nnewline"))
    }

    @Test func aVMThatIsGoneLeavesNoSeries() {
        var snapshot = FakeControl.sampleMetrics
        #expect(Self.render(snapshot).samples.keys.contains { $0.contains(#"vm="web""#) })
        snapshot.vms.removeAll { $0.name == "web" }
        #expect(Self.render(snapshot).samples.keys.filter { $0.contains(#"vm="web""#) } == [])
    }

    /// Every family rendered is one of `families` with its type and help; the names follow Prometheus' rules.
    @Test func familiesAreNamedAsPrometheusWants() {
        let text = Self.render()
        let families = Dictionary(uniqueKeysWithValues: MetricsExposition.families.map { ($0.name, $0) })
        #expect(families.count == MetricsExposition.families.count, "a family is listed twice")
        for (name, type) in text.types {
            #expect(families[name]?.kind.rawValue == type, "\(name) is a \(type)")
            #expect(families[name]?.help == text.helps[name], "\(name)'s help")
        }
        // Everything the sample has figures for is rendered.
        #expect(Set(families.keys).subtracting(text.types.keys).sorted() == [
            "corral_host_memory_commit_ratio_limit", "corral_vm_migration_downtime_seconds"])
        for family in MetricsExposition.families {
            #expect(family.name.hasPrefix("corral_"))
            #expect(family.name.hasSuffix("_total") == (family.kind == .counter), "\(family.name)")
            #expect(!family.help.isEmpty)
        }
    }

    /// docs/metrics.md lists every family.
    @Test func theDocumentationListsEveryFamily() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/metrics.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for family in MetricsExposition.families {
            #expect(text.contains("`\(family.name)`"), "docs/metrics.md does not list \(family.name)")
        }
    }

    // MARK: The route

    @Test func theRouteServesTheExpositionBehindTheToken() async throws {
        let control = FakeControl()
        try await Application(router: CorralAPI(control: control).router(token: "s3cret", peerToken: "p33r")).test(.router) {
            client in
            let refused = try await client.execute(uri: "/metrics", method: .get)
            #expect(refused.status == .unauthorized)
            // The peer token opens only what a migration needs.
            let peer = try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer p33r"])
            #expect(peer.status == .forbidden)
            let odd = try await client.execute(uri: "/metrics?name=x", method: .get,
                                               headers: [.authorization: "Bearer s3cret"])
            #expect(odd.status == .badRequest)
            let response = try await client.execute(uri: "/metrics", method: .get,
                                                    headers: [.authorization: "Bearer s3cret"])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            let text = Exposition(String(buffer: response.body))
            #expect(text.samples[#"corral_build_info{version="\#(CorralVersion.string)"}"#] == 1)
            #expect(text.samples[#"corral_vm_vcpus{vm="web"}"#] == 2)
            #expect((text.samples["corral_scrape_duration_seconds"] ?? -1) >= 0)
        }
        #expect(await control.calls == [.metricsSnapshot])
    }

    /// `--metrics-token-file`'s token: `GET /metrics` only.
    @Test func theMetricsTokenOpensTheMetricsAndNothingElse() async throws {
        let control = FakeControl(vms: [FakeControl.status("web")])
        let router = CorralAPI(control: control).router(token: "s3cret", peerToken: "p33r", metricsToken: "scr4pe")
        try await Application(router: router).test(.router) { client in
            let scraper: HTTPFields = [.authorization: "Bearer scr4pe"]
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: scraper).status == .ok)
            for (method, uri) in [(HTTPRequest.Method.get, "/v1/vms"), (.get, "/v1/health"), (.post, "/metrics"),
                                  (.post, "/v1/vms/web/kill"), (.get, "/v1/host")] {
                let refused = try await client.execute(uri: uri, method: method, headers: scraper)
                #expect(refused.status == .forbidden, "\(method) \(uri)")
            }
        }
        #expect(await control.calls == [.metricsSnapshot])
    }

    // MARK: promtool

    static let promtool: String? = {
        let candidates = ["/opt/corral-prometheus/usr/bin/promtool", "/usr/bin/promtool"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// `promtool check metrics` on `text`: nil when it is content, else what it said.
    static func promtoolProblems(_ text: String) async throws -> String? {
        let promtool = try #require(promtool)
        let file = NSTemporaryDirectory() + "corral-metrics-\(UUID().uuidString).prom"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try await ProcessLauncher.run("/bin/sh", ["-c", #"exec "$0" check metrics < "$1""#, promtool, file])
        return result.status == .exited(0) ? nil : "\(result.status): \(result.output)"
    }

    /// promtool is scripts/install-deps' (Debian's prometheus package, unpacked).
    @Test(.enabled(if: promtool != nil, "promtool is not installed (scripts/install-deps)"))
    func promtoolFindsNothingWrongWithTheRoutesOutput() async throws {
        let output = try await Application(router: CorralAPI(control: FakeControl()).router()).test(.router) { client in
            String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
        }
        #expect(try await Self.promtoolProblems(output) == nil)
        // The checker is not vacuous: a counter without `_total` is refused.
        let broken = output.replacingOccurrences(of: "corral_vm_restarts_total", with: "corral_vm_restarts")
        #expect(try await Self.promtoolProblems(broken) != nil)
    }
}
