import API
import CorralControl
import CorralModel
import CorralWire
import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Testing

/// docs/openapi.yaml against the code: the routes the router registers, the `$ref`s, and the replies the real
/// encoders produce (through the router, over `FakeControl`).
@Suite struct OpenAPITests {
    let document: OpenAPIDocument

    init() throws {
        document = try OpenAPIDocument.load()
    }

    /// A route added without documentation, or documentation of a route that does not exist, fails here.
    @Test func theDocumentDescribesExactlyTheRoutesTheRouterServes() {
        let router = CorralAPI(control: FakeControl()).router()
        let served = Set(router.routes.map { "\($0.method) \($0.path)" })
        #expect(served.count > 30, "the router's route list looks wrong: \(served.sorted())")
        #expect(served.subtracting(document.operations).sorted() == [],
                "served but not in docs/openapi.yaml")
        #expect(document.operations.subtracting(served).sorted() == [],
                "in docs/openapi.yaml but not served")
    }

    @Test func everyReferenceResolvesAndPathParametersMatchTheirTemplates() {
        var problems: [String] = []
        func walk(_ value: JSONValue, _ location: String) {
            switch value {
            case .object(let members):
                for (key, member) in members {
                    if key == "$ref" {
                        if member.stringValue.flatMap(document.resolve) == nil {
                            problems.append("\(location): $ref \(member.compactText) does not resolve")
                        }
                    } else {
                        walk(member, location + "/" + key)
                    }
                }
            case .array(let items):
                for (index, item) in items.enumerated() { walk(item, "\(location)/\(index)") }
            default:
                break
            }
        }
        walk(document.root, "#")

        for (template, item) in document.paths {
            let names = Set(template.split(separator: "/").filter { $0.hasPrefix("{") }.map {
                String($0.dropFirst().dropLast())
            })
            let shared = item["parameters"]?.arrayValue ?? []
            for method in OpenAPIDocument.methods {
                guard let operation = item[method] else { continue }
                let parameters = (shared + (operation["parameters"]?.arrayValue ?? [])).compactMap(document.dereferenced)
                let inPath = parameters.filter { $0["in"]?.stringValue == "path" }
                let declared = Set(inPath.compactMap { $0["name"]?.stringValue })
                if declared != names {
                    problems.append("\(method.uppercased()) \(template): path parameters \(declared.sorted()), template \(names.sorted())")
                }
                for parameter in inPath where parameter["required"]?.boolValue != true {
                    problems.append("\(method.uppercased()) \(template): path parameter \(parameter["name"]?.compactText ?? "?") must be required")
                }
                for (status, response) in operation["responses"]?.objectValue ?? JSONObject() {
                    if document.dereferenced(response)?["description"] == nil {
                        problems.append("\(method.uppercased()) \(template) \(status): no description")
                    }
                }
            }
        }
        #expect(problems == [])
        #expect(document.root["info"]?["version"]?.stringValue == CorralVersion.string)
    }

    /// The checker is not vacuous: it refuses what the VMStatus schema forbids.
    @Test func theCheckerRefusesWhatTheSchemaForbids() throws {
        let good = try Self.json(WireCoding.encode(FakeControl.status("web")))
        guard case .object(var members) = good else { Issue.record("not an object"); return }
        let location = "#/components/schemas/VMStatus"
        let schema: JSONValue = ["$ref": .string(location)]
        var checker = SchemaChecker(document: document)
        checker.check(good, schema, context: "good")
        #expect(checker.problems == [])

        members["surprise"] = 1
        members["state"] = "sleeping"
        members["restartCount"] = "none"
        members["qmpSocket"] = nil
        checker.check(.object(members), schema, context: "bad")
        #expect(Set(checker.problems) == [
            "bad: $: the required `qmpSocket` is missing (\(location))",
            "bad: $.restartCount: \"none\" is not of type integer (\(location)/properties/restartCount)",
            "bad: $.state: \"sleeping\" is not one of [\"starting\",\"running\",\"paused\",\"stopped\",\"crashed\",\"migrating\",\"incoming\",\"broken\"] (#/components/schemas/VMState)",
            "bad: $: `surprise` is not a documented property (\(location))",
        ])
    }

    // MARK: Replies

    /// One request and what the router answered.
    struct Exchange: Sendable {
        var method: String
        var uri: String
        var expected: Int
        var status: Int
        var contentType: String?
        var wwwAuthenticate: String?
        var body: Data

        var path: String { String(uri.prefix { $0 != "?" }) }
    }

    /// Drives every route (successes and each kind of failure) through the real router and encoders, checks every
    /// reply against the schema the document gives for its operation and status, and then that every documented
    /// reply field appeared in some reply and every documented operation was called.
    @Test func everyReplyMatchesItsSchemaAndEveryDocumentedFieldIsProduced() async throws {
        let control = FakeControl(vms: [Self.richStatus("web"), FakeControl.status("db", state: .stopped)])
        await control.setIncomingReply(IncomingReply(uri: "tcp:192.0.2.2:49152", nbdHost: "192.0.2.2", nbdPort: 10809,
                                                     exports: ["root": "web-root"]))
        await control.addNetwork(NetworkInfo(
            name: "lab", bridge: "cn-lab", subnet: "198.51.100.0/24", gateway: "198.51.100.1", nat: true,
            dhcpRange: "198.51.100.2-198.51.100.254", dnsmasqPid: nil, state: "degraded",
            problem: "dnsmasq is not running", vms: ["web"], leases: ["52:54:00:12:34:57": "198.51.100.23"]))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("corral-openapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let serial = folder.appendingPathComponent("serial.log").path
        try "boot\r\nlogin: ".write(toFile: serial, atomically: true, encoding: .utf8)
        await control.setSerialLog("web", path: serial)
        let incoming = String(decoding: try WireCoding.encode(MigrationRouteTests.incoming()), as: UTF8.self)

        var exchanges = try await Application(router: CorralAPI(control: control).router()).test(.router) { client in
            var out: [Exchange] = []
            func call(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, expect: Int) async throws {
                let response = try await client.execute(
                    uri: uri, method: method, headers: body == nil ? [:] : [.contentType: "application/json"],
                    body: body.map { ByteBuffer(string: $0) })
                out.append(Exchange(method: method.rawValue, uri: uri, expected: expect, status: Int(response.status.code),
                                    contentType: response.headers[.contentType],
                                    wwwAuthenticate: response.headers[.wwwAuthenticate],
                                    body: Data(response.body.readableBytesView)))
            }
            // Lifecycle.
            try await call(.get, "/v1/health", expect: 200)
            try await call(.get, "/v1/vms", expect: 200)
            try await call(.post, "/v1/vms", #"{"profile":"/etc/corral/new.yaml","name":"new","paused":true}"#, expect: 201)
            try await call(.post, "/v1/vms", #"{"profile":"/etc/corral/new.yaml"}"#, expect: 400)
            try await call(.post, "/v1/vms", String(repeating: " ", count: (1 << 20) + 1), expect: 413)
            try await call(.get, "/v1/vms/web", expect: 200)
            try await call(.get, "/v1/vms/ghost", expect: 404)
            try await call(.post, "/v1/vms/db/start", expect: 200)
            try await call(.post, "/v1/vms/db/stop", #"{"timeoutSeconds":5}"#, expect: 200)
            try await call(.post, "/v1/vms/db/stop", #"{"timeoutSeconds":-1}"#, expect: 400)
            try await call(.post, "/v1/vms/db/kill", expect: 200)
            try await call(.post, "/v1/vms/new/pause", expect: 200)
            try await call(.post, "/v1/vms/new/resume", expect: 200)
            try await call(.post, "/v1/vms/web/qmp", #"{"command":"query-status","arguments":null}"#, expect: 200)
            try await call(.post, "/v1/vms/web/qmp", #"{"command":"query-status","arguments":[1]}"#, expect: 400)
            try await call(.delete, "/v1/vms/new?force=true", expect: 204)
            try await call(.delete, "/v1/vms/new?force=maybe", expect: 400)
            // Streams (finite ones: the console without follow, past events only).
            try await call(.get, "/v1/vms/web/console?lines=2", expect: 200)
            try await call(.get, "/v1/vms/web/console?lines=-1", expect: 400)
            try await call(.get, "/v1/events?follow=false&history=5&vm=web", expect: 200)
            try await call(.get, "/v1/events?vm=", expect: 400)
            try await call(.get, "/v1/vms/web/screenshot", expect: 200)
            try await call(.get, "/v1/vms/web/console/attach?force=true", expect: 400)
            try await call(.get, "/v1/vms/web/vnc", expect: 400)
            try await call(.get, "/v1/vms/ghost/vnc", expect: 404)
            try await call(.get, "/v1/vms/db/screenshot", expect: 409)
            // Hotplug.
            try await call(.post, "/v1/vms/web/cpus", #"{"count":3}"#, expect: 200)
            try await call(.post, "/v1/vms/web/disks",
                           #"{"id":"data","file":"/srv/data.qcow2","size":"1G","readonly":false,"bus":"nvme"}"#, expect: 201)
            try await call(.delete, "/v1/vms/web/disks/data?deleteImage=true", expect: 200)
            try await call(.delete, "/v1/vms/web/disks/nope", expect: 404)
            try await call(.post, "/v1/vms/web/nics", #"{"id":"net2","mode":"bridge","bridge":"br0"}"#, expect: 201)
            try await call(.delete, "/v1/vms/web/nics/net2", expect: 200)
            try await call(.post, "/v1/vms/web/hostdevs", #"{"id":"uplink","vfOf":"enp101s0f0","vlan":100}"#, expect: 201)
            try await call(.delete, "/v1/vms/web/hostdevs/uplink", expect: 200)
            try await call(.get, "/v1/hostdevs", expect: 200)
            try await call(.get, "/v1/volumes", expect: 200)
            try await call(.get, "/v1/vms/web/snapshots", expect: 200)
            try await call(.post, "/v1/vms/web/snapshots", #"{"name":"before-upgrade"}"#, expect: 201)
            try await call(.post, "/v1/vms/web/snapshots", #"{"name":"../etc"}"#, expect: 400)
            try await call(.post, "/v1/vms/web/snapshots/before-upgrade/revert", expect: 200)
            try await call(.delete, "/v1/vms/web/snapshots/before-upgrade", expect: 200)
            try await call(.delete, "/v1/vms/web/snapshots/nope", expect: 404)
            try await call(.post, "/v1/vms/web/disks", #"{"id":"scratch","size":"1G","readonly":false}"#, expect: 201)
            try await call(.post, "/v1/vms/web/memory", #"{"size":"512M"}"#, expect: 201)
            try await call(.delete, "/v1/vms/web/memory/dimm0", expect: 200)
            // Overcommit.
            try await call(.post, "/v1/vms/web/balloon", #"{"size":"384M"}"#, expect: 200)
            try await call(.get, "/v1/vms/web/stats", expect: 200)
            try await call(.post, "/v1/vms/web/tuning", #"{"cpuWeight":200,"autoBalloon":true}"#, expect: 200)
            try await call(.post, "/v1/vms/web/tuning", "{}", expect: 400)
            try await call(.get, "/v1/host", expect: 200)
            try await call(.get, "/v1/cluster", expect: 200)
            try await call(.get, "/v1/vms/web/console?lines=2&folow=true", expect: 400)
            // Metrics (MetricsTests checks the text itself).
            try await call(.get, "/metrics", expect: 200)
            try await call(.get, "/metrics?vm=web", expect: 400)
            // Migration: a stream that completes, one that fails, the peer routes.
            await control.scriptMigration(progress: [Self.progress], outcome: .success(MigrationRouteTests.result))
            try await call(.post, "/v1/vms/web/migrate", #"{"to":"192.0.2.2:7070","token":"t","options":{}}"#, expect: 200)
            await control.scriptMigration(progress: [], outcome: .failure(.qmp(Self.qmpFailure)))
            try await call(.post, "/v1/vms/web/migrate", #"{"to":"192.0.2.2:7070","options":{"postcopy":true}}"#, expect: 200)
            try await call(.post, "/v1/vms/web/migrate", #"{"to":"192.0.2.2:0","options":{}}"#, expect: 400)
            try await call(.post, "/v1/vms/web/migrate/cancel", expect: 204)
            // Cluster: placement, evacuate and restore (streams with every kind of line).
            try await call(.get, "/v1/vms/web/placement?to=auto", expect: 200)
            try await call(.get, "/v1/vms/web/placement", expect: 400)
            try await call(.get, "/v1/vms/web/placement?to=zz", expect: 403)
            try await call(.get, "/v1/vms/nope/placement?to=auto", expect: 404)
            try await call(.post, "/v1/hosts/host-a/evacuate", #"{"parallel":2}"#, expect: 200)
            try await call(.post, "/v1/hosts/host-a/evacuate", #"{"parallel":0}"#, expect: 400)
            try await call(.post, "/v1/hosts/host-z/evacuate", expect: 404)
            try await call(.post, "/v1/hosts/host-a/restore", expect: 200)
            try await call(.post, "/v1/hosts/host-z/restore", expect: 404)
            try await call(.post, "/v1/migrations/incoming", incoming, expect: 200)
            try await call(.post, "/v1/migrations/incoming", #"{"config":{}}"#, expect: 400)
            try await call(.post, "/v1/migrations/incoming/web/commit", expect: 200)
            try await call(.post, "/v1/migrations/incoming/web/abort", expect: 204)
            // Networks.
            try await call(.post, "/v1/networks", #"{"name":"dev","subnet":"203.0.113.0/24","nat":false}"#, expect: 201)
            try await call(.post, "/v1/networks", #"{"name":"dev","subnet":"203.0.113.0/25","nat":false}"#, expect: 409)
            try await call(.post, "/v1/networks", #"{"name":"Dev","subnet":"203.0.113.0/24","nat":false}"#, expect: 400)
            try await call(.get, "/v1/networks", expect: 200)
            try await call(.get, "/v1/networks/lab", expect: 200)
            try await call(.delete, "/v1/networks/dev", expect: 204)
            try await call(.delete, "/v1/networks/dev", expect: 404)
            // Each kind of failure the control reports, with its extra fields.
            let failures: [(ControlError, HTTPRequest.Method, String, String?, Int)] = [
                (.invalidProfile([Diagnostic(file: "/etc/corral/web.yaml", line: 4, column: 10, path: "cpu.count",
                                             message: "must be between 1 and 255, got 0")]),
                 .post, "/v1/vms", #"{"profile":"/etc/corral/web.yaml","paused":false}"#, 422),
                (.startFailed(reason: "QEMU exited with status 1", qemuOutput: ["qemu: -m 0: bad size"]),
                 .post, "/v1/vms/web/start", nil, 500),
                (.qmp(Self.qmpFailure), .post, "/v1/vms/web/pause", nil, 502),
                (.unreachable("192.0.2.2:7070 does not answer"), .post, "/v1/vms/web/start", nil, 502),
                (.refused("4 vCPUs over the limit"), .post, "/v1/vms/web/start", nil, 403),
                (.conflict("web is stopped"), .post, "/v1/vms/web/resume", nil, 409),
                (.internalError("cannot write vm.json"), .delete, "/v1/vms/web", nil, 500),
            ]
            for (failure, method, uri, body, status) in failures {
                await control.setFailure(failure)
                try await call(method, uri, body, expect: status)
            }
            await control.setFailure(nil)
            // No such route: the not-found error body.
            try await call(.get, "/v2/nothing", expect: 404)
            try await call(.put, "/v1/vms/web", expect: 404)
            return out
        }

        // The TCP listener's router: the token comes first.
        exchanges += try await Application(router: CorralAPI(control: control).router(token: "s3cret")).test(.router) {
            client in
            var out: [Exchange] = []
            for (uri, authorization, expect) in [("/v1/health", nil, 401), ("/v1/vms", "Bearer wrong", 401),
                                                 ("/v1/health", "Bearer s3cret", 200)] {
                var headers = HTTPFields()
                if let authorization { headers[.authorization] = authorization }
                let response = try await client.execute(uri: uri, method: .get, headers: headers)
                out.append(Exchange(method: "GET", uri: uri, expected: expect, status: Int(response.status.code),
                                    contentType: response.headers[.contentType],
                                    wwwAuthenticate: response.headers[.wwwAuthenticate],
                                    body: Data(response.body.readableBytesView)))
            }
            return out
        }

        // The event stream's lines are `CorralEvent`s as the route encodes them (WireCoding); the fake keeps no
        // past events, so they are encoded here.
        let events = [
            CorralEvent(time: 1_764_040_485.123, vm: "web", name: "SHUTDOWN", data: ["guest": true, "reason": "guest-shutdown"]),
            CorralEvent(time: 1_764_040_485.2, vm: "web", name: .stopped),
        ]
        var lines = Data()
        for event in events { lines += try WireCoding.encode(event) + Data("\n".utf8) }
        exchanges.append(Exchange(method: "GET", uri: "/v1/events", expected: 200, status: 200,
                                  contentType: "application/x-ndjson", body: lines))

        var checker = SchemaChecker(document: document)
        var problems: [String] = []
        var called: Set<String> = []
        for exchange in exchanges {
            let what = "\(exchange.method) \(exchange.uri) → \(exchange.status)"
            if exchange.status != exchange.expected {
                problems.append("\(what): expected \(exchange.expected): \(String(decoding: exchange.body, as: UTF8.self))")
            }
            guard let template = document.template(for: exchange.path),
                document.paths[template]?[exchange.method.lowercased()] != nil
            else {
                // Not a route: the router's not-found answer is still an error body.
                let body = try Self.json(exchange.body)
                checker.check(body, ["$ref": "#/components/schemas/Error"], context: what)
                continue
            }
            called.insert("\(exchange.method) \(template)")
            guard let response = document.response(exchange.method, template, status: exchange.status) else {
                problems.append("\(what): status \(exchange.status) is not documented for \(exchange.method) \(template)")
                continue
            }
            if let header = response["headers"]?["WWW-Authenticate"], exchange.wwwAuthenticate == nil {
                problems.append("\(what): no WWW-Authenticate header (documented: \(header.compactText))")
            }
            guard let content = response["content"]?.objectValue else {
                if !exchange.body.isEmpty { problems.append("\(what): a body where none is documented") }
                continue
            }
            let mediaType = exchange.contentType.map { String($0.prefix { $0 != ";" }).trimmingCharacters(in: .whitespaces) }
            guard let mediaType, let schema = content[mediaType]?["schema"] else {
                problems.append("\(what): Content-Type \(exchange.contentType ?? "none"), documented \(content.keys)")
                continue
            }
            switch mediaType {
            case "application/json":
                checker.check(try Self.json(exchange.body), schema, context: what)
            case "application/x-ndjson":
                let text = String(decoding: exchange.body, as: UTF8.self)
                for (index, line) in text.split(separator: "\n").enumerated() {
                    checker.check(try Self.json(Data(line.utf8)), schema, context: what, path: "line \(index + 1)")
                }
            default:
                checker.check(.string(String(decoding: exchange.body, as: UTF8.self)), schema, context: what)
            }
        }
        #expect(problems == [])
        #expect(checker.problems == [])
        #expect(checker.neverSeen == [], "documented reply fields no reply carried: add them to a sample, or drop them")
        #expect(document.operations.subtracting(called).sorted() == [], "documented operations this test never called")
    }

    // MARK: Samples

    static func json(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    static let progress = MigrationProgress(
        status: .active, ramTransferred: 1_000_000, ramRemaining: 3_000_000, ramTotal: 4_000_000, mbps: 841,
        dirtyPagesRate: 120, dirtySyncCount: 2, expectedDowntimeMs: 40, totalTimeMs: 1200, downtimeMs: 12,
        setupTimeMs: 5, errorDescription: "none yet")

    static let qmpFailure = QMPFailure(command: "migrate", errorClass: "GenericError", desc: "Failed to connect",
                                       note: "web keeps running here")

    /// A status with every optional field set.
    static func richStatus(_ name: String) -> VMStatus {
        var status = FakeControl.status(name, state: .migrating)
        status.memory.balloonBytes = 384 << 20
        status.nics.append(.init(id: "net1", mac: "52:54:00:12:34:57", mode: "network", network: "lab",
                                 addresses: ["198.51.100.23"]))
        status.lastExit = "guest powered off"
        status.unplugPending = ["extra"]
        status.problem = "the QMP monitor is lost"
        status.migration = OutgoingMigrationInfo(to: "192.0.2.2:7070", progress: progress)
        return status
    }
}
