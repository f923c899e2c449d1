@testable import API
import CorralModel
import CorralWire
import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Profiles
import CorralControl
import LogTail
import Supervisor
import Testing

/// Every route through Hummingbird's router test framework, over a fake `VMControl`.
@Suite struct RouteTests {
    let fake = FakeControl(vms: [FakeControl.status("web"), FakeControl.status("db", state: .stopped)])

    func withApp<T: Sendable>(
        token: String? = nil, peerToken: String? = nil, _ body: @Sendable (any TestClientProtocol) async throws -> T
    ) async throws -> T {
        let app = Application(router: CorralAPI(control: fake).router(token: token, peerToken: peerToken))
        return try await app.test(.router, body)
    }

    static func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
    }

    func errorBody(_ response: TestResponse) throws -> ErrorBody {
        try decode(ErrorBody.self, response)
    }

    @Test func health() async throws {
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/health", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(try decode(HealthReply.self, response) == HealthReply(status: "ok", version: CorralVersion.string))
        }
    }

    @Test func listReturnsEveryVM() async throws {
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms", method: .get)
            #expect(response.status == .ok)
            let list = try decode([VMStatus].self, response)
            #expect(list == [FakeControl.status("db", state: .stopped), FakeControl.status("web")])
        }
    }

    @Test func upCreatesAndAnswers201() async throws {
        try await withApp { client in
            let body = #"{"profile":"/etc/corral/web2.yaml","name":"web2","accel":"tcg","paused":true}"#
            let response = try await client.execute(uri: "/v1/vms", method: .post, headers: Self.jsonHeaders,
                                                    body: Self.json(body))
            #expect(response.status == .created)
            let status = try decode(VMStatus.self, response)
            #expect(status.name == "web2")
            #expect(status.state == .paused)
        }
        #expect(await fake.calls == [.up(UpRequest(profile: "/etc/corral/web2.yaml", name: "web2", accel: .tcg,
                                                    paused: true))])
    }

    /// The route only decodes; the control's `validate()` refusal keeps its status and message.
    @Test func upRefusesARelativeProfilePath() async throws {
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms", method: .post, headers: Self.jsonHeaders,
                                                    body: Self.json(#"{"profile":"web.yaml","paused":false}"#))
            #expect(response.status == .badRequest)
            let error = try errorBody(response)
            #expect(error.error == "invalid-request")
            #expect(error.message == "PROFILE: 'web.yaml' must be an absolute path on the daemon's host")
        }
        #expect(await fake.calls == [.up(UpRequest(profile: "web.yaml"))])
    }

    @Test func statusOfKnownAndUnknownVM() async throws {
        try await withApp { client in
            let ok = try await client.execute(uri: "/v1/vms/web", method: .get)
            #expect(ok.status == .ok)
            #expect(try decode(VMStatus.self, ok) == FakeControl.status("web"))

            let missing = try await client.execute(uri: "/v1/vms/nope", method: .get)
            #expect(missing.status == .notFound)
            #expect(try errorBody(missing) == ErrorBody(error: "not-found", message: "no VM named nope"))
        }
    }

    @Test(arguments: [
        ("start", VMState.running), ("kill", .stopped), ("pause", .paused), ("resume", .running),
    ])
    func lifecycleVerbs(verb: String, expected: VMState) async throws {
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms/web/\(verb)", method: .post)
            #expect(response.status == .ok)
            #expect(try decode(VMStatus.self, response).state == expected)
        }
        let expectedCall: FakeControl.Call =
            switch verb {
            case "start": .start("web")
            case "kill": .kill("web")
            case "pause": .pause("web")
            default: .resume("web")
            }
        #expect(await fake.calls == [expectedCall])
    }

    @Test func stopUsesTheGivenTimeoutOrThirtySeconds() async throws {
        try await withApp { client in
            let given = try await client.execute(uri: "/v1/vms/web/stop", method: .post, headers: Self.jsonHeaders,
                                                 body: Self.json(#"{"timeoutSeconds": 5.5}"#))
            #expect(given.status == .ok)
            #expect(try decode(VMStatus.self, given).state == .stopped)
            let defaulted = try await client.execute(uri: "/v1/vms/web/stop", method: .post)
            #expect(defaulted.status == .ok)
            let emptyObject = try await client.execute(uri: "/v1/vms/web/stop", method: .post,
                                                       headers: Self.jsonHeaders, body: Self.json("{}"))
            #expect(emptyObject.status == .ok)
        }
        #expect(await fake.calls == [.stop("web", .milliseconds(5500)), .stop("web", .seconds(30)),
                                     .stop("web", .seconds(30))])
    }

    @Test func stopRejectsANegativeOrMistypedTimeout() async throws {
        try await withApp { client in
            let negative = try await client.execute(uri: "/v1/vms/web/stop", method: .post, headers: Self.jsonHeaders,
                                                    body: Self.json(#"{"timeoutSeconds": -1}"#))
            #expect(negative.status == .badRequest)
            #expect(try errorBody(negative).message == "timeoutSeconds must be between 0 and 86400, got -1.0")
            let mistyped = try await client.execute(uri: "/v1/vms/web/stop", method: .post, headers: Self.jsonHeaders,
                                                    body: Self.json(#"{"timeoutSeconds": "soon"}"#))
            #expect(mistyped.status == .badRequest)
            #expect(try errorBody(mistyped).message == "field `timeoutSeconds`: expected a number")
        }
        #expect(await fake.calls.isEmpty)
    }

    @Test func deleteAnswers204AndPassesForce() async throws {
        try await withApp { client in
            let forced = try await client.execute(uri: "/v1/vms/web?force=true", method: .delete)
            #expect(forced.status == .noContent)
            #expect(forced.body.readableBytes == 0)
            let keep = try await client.execute(uri: "/v1/vms/db?volumes=keep", method: .delete)
            #expect(keep.status == .noContent)
            let bad = try await client.execute(uri: "/v1/vms/db?force=maybe", method: .delete)
            #expect(bad.status == .badRequest)
            #expect(try errorBody(bad).message == "force must be true or false, got maybe")
            let plain = try await client.execute(uri: "/v1/vms/db", method: .delete)
            #expect(plain.status == .notFound, "removed already")
            let unknown = try await client.execute(uri: "/v1/vms/db?volumes=archive", method: .delete)
            #expect(try errorBody(unknown).message == "volumes must be delete or keep, got archive")
        }
        #expect(await fake.calls == [.remove("web", force: true), .removeKeeping("db", force: false, volumes: .keep),
                                     .remove("db", force: false)])
    }

    @Test func qmpPassesCommandAndArgumentsAndWrapsTheReturn() async throws {
        try await withApp { client in
            let response = try await client.execute(
                uri: "/v1/vms/web/qmp", method: .post, headers: Self.jsonHeaders,
                body: Self.json(#"{"command":"human-monitor-command","arguments":{"command-line":"info cpus"}}"#))
            #expect(response.status == .ok)
            #expect(try decode(QMPReply.self, response) == QMPReply(return: ["running": true, "status": "running"]))
            let bare = try await client.execute(uri: "/v1/vms/web/qmp", method: .post, headers: Self.jsonHeaders,
                                                body: Self.json(#"{"command":"query-status"}"#))
            #expect(bare.status == .ok)
        }
        #expect(await fake.calls == [
            .qmp("web", command: "human-monitor-command", arguments: ["command-line": "info cpus"]),
            .qmp("web", command: "query-status", arguments: nil),
        ])
    }

    @Test func qmpRejectsMissingCommandAndNonObjectArguments() async throws {
        try await withApp { client in
            let missing = try await client.execute(uri: "/v1/vms/web/qmp", method: .post, headers: Self.jsonHeaders,
                                                   body: Self.json(#"{"arguments":{}}"#))
            #expect(missing.status == .badRequest)
            #expect(try errorBody(missing).message == "missing field `command`")
            let array = try await client.execute(uri: "/v1/vms/web/qmp", method: .post, headers: Self.jsonHeaders,
                                                 body: Self.json(#"{"command":"x","arguments":[1]}"#))
            #expect(array.status == .badRequest)
            #expect(try errorBody(array).message == "arguments must be a JSON object, got [1]")
            let empty = try await client.execute(uri: "/v1/vms/web/qmp", method: .post)
            #expect(empty.status == .badRequest)
            #expect(try errorBody(empty).message == "missing JSON body")
        }
        #expect(await fake.calls.isEmpty)
    }

    @Test func malformedJSONIs400NamingTheProblem() async throws {
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms", method: .post, headers: Self.jsonHeaders,
                                                    body: Self.json(#"{"profile": "/x.yaml",, }"#))
            #expect(response.status == .badRequest)
            let error = try errorBody(response)
            #expect(error.error == "invalid-request")
            #expect(error.message.hasPrefix("malformed JSON body"))
        }
        #expect(await fake.calls.isEmpty)
    }

    @Test func unknownRouteOrMethodIs404JSON() async throws {
        try await withApp { client in
            let route = try await client.execute(uri: "/v2/nothing", method: .get)
            #expect(route.status == .notFound)
            #expect(route.headers[.contentType] == "application/json")
            #expect(try errorBody(route) == ErrorBody(error: "not-found", message: "no route for GET /v2/nothing"))
            let method = try await client.execute(uri: "/v1/vms/web", method: .put)
            #expect(method.status == .notFound)
        }
    }

    static let errorCases: [(ControlError, Int)] = [
        (.invalidProfile([Diagnostic(file: "/p/web.yaml", line: 3, column: 9, path: "cpu.count",
                                     message: "must be between 1 and 255, got 0"),
                          Diagnostic(file: "/p/web.yaml", line: 0, column: 0, path: "", message: "unreadable")]),
         422),
        (.invalidRequest("bad"), 400),
        (.notFound("no VM named x"), 404),
        (.conflict("web is already running"), 409),
        (.startFailed(reason: "QEMU exited with status 1", qemuOutput: ["qemu: -m 99T: too big", "second"]), 500),
        (.qmp(QMPFailure(command: "device_add", errorClass: "GenericError", desc: "Duplicate ID 'net0' for device",
                         note: "earlier steps were undone")), 502),
        (.unreachable("destination 192.0.2.2:7070: Connection refused"), 502),
        (.refused("not enough memory: need 8 GiB, 2 GiB free"), 403),
        (.internalError("disk full"), 500),
    ]

    @Test(arguments: errorCases)
    func controlErrorsMapToStatusAndBodyAndBack(error: ControlError, status: Int) async throws {
        await fake.setFailure(error)
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms/web/start", method: .post)
            #expect(response.status.code == status)
            let body = try errorBody(response)
            #expect(body.error == error.code)
            #expect(body.message == error.message)
            #expect(body.controlError == error, "the body decodes back into the same ControlError")
        }
    }

    @Test func invalidProfileBodyCarriesEveryDiagnostic() async throws {
        let diagnostics = [
            Diagnostic(file: "/p/a.yaml", line: 2, column: 3, path: "memory.size", message: "not a size: 12Q"),
            Diagnostic(file: "/p/a.yaml", line: 7, column: 5, path: "disks[0].file", message: "no such file"),
        ]
        await fake.setFailure(.invalidProfile(diagnostics))
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms", method: .post, headers: Self.jsonHeaders,
                                                    body: Self.json(#"{"profile":"/p/a.yaml","paused":false}"#))
            #expect(response.status.code == 422)
            let raw = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            #expect(raw?["error"] as? String == "invalid-profile")
            #expect((raw?["diagnostics"] as? [Any])?.count == 2)
            #expect(try errorBody(response).diagnostics == diagnostics)
        }
    }

    @Test func tokenIsDemandedWhenConfigured() async throws {
        try await withApp(token: "s3cret") { client in
            let none = try await client.execute(uri: "/v1/vms", method: .get)
            #expect(none.status == .unauthorized)
            #expect(try errorBody(none).error == "unauthorized")
            let unknownRoute = try await client.execute(uri: "/v9", method: .get)
            #expect(unknownRoute.status == .unauthorized, "no route is revealed without the token")
            let right = try await client.execute(uri: "/v1/vms", method: .get,
                                                 headers: [.authorization: "Bearer s3cret"])
            #expect(right.status == .ok)
        }
        #expect(await fake.calls == [.list])
    }

    @Test func thePeerTokenOpensOnlyTheMigrationRoutes() async throws {
        try await withApp(token: "admin-key", peerToken: "peer-key") { client in
            let peer: HTTPFields = [.authorization: "Bearer peer-key", .contentType: "application/json"]
            for (method, uri) in [(HTTPRequest.Method.post, "/v1/vms"), (.get, "/v1/vms"), (.post, "/v1/vms/web/qmp"),
                                  (.get, "/v1/vms/web/console"), (.delete, "/v1/vms/web"), (.post, "/v1/vms/web/kill")] {
                let response = try await client.execute(uri: uri, method: method, headers: peer, body: Self.json("{}"))
                #expect(response.status == .forbidden, "\(method) \(uri)")
                #expect(try errorBody(response).error == "forbidden", "\(method) \(uri)")
            }
            // A VM's state is what a restarted source asks its destination.
            let state = try await client.execute(uri: "/v1/vms/web", method: .get, headers: peer)
            #expect(state.status == .ok)
            let abort = try await client.execute(uri: "/v1/migrations/incoming/web/abort", method: .post, headers: peer)
            #expect(abort.status != .forbidden && abort.status != .unauthorized, "\(abort.status)")
            // The admin token still opens everything; a token that is neither is 401.
            let admin = try await client.execute(uri: "/v1/vms", method: .get, headers: [.authorization: "Bearer admin-key"])
            #expect(admin.status == .ok)
            let neither = try await client.execute(uri: "/v1/vms/web", method: .get, headers: [.authorization: "Bearer peer-kez"])
            #expect(neither.status == .unauthorized)
        }
        // Only the allowed calls reached the control.
        let calls = await fake.calls
        #expect(calls.contains(.list) && calls.contains(.status("web")) && !calls.contains(.kill("web")), "\(calls)")
    }

    @Test func consoleWithoutFollowSendsTheLastLines() async throws {
        let folder = NSTemporaryDirectory() + "corral-api-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = folder + "/serial.log"
        try (1...200).map { "line \($0)\r\n" }.joined().appending("partial").write(toFile: log, atomically: true,
                                                                                   encoding: .utf8)
        await fake.setSerialLog("web", path: log)
        try await withApp { client in
            let response = try await client.execute(uri: "/v1/vms/web/console?lines=3", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; charset=utf-8")
            #expect(String(buffer: response.body) == "line 199\nline 200\npartial\n")
            let defaulted = try await client.execute(uri: "/v1/vms/web/console", method: .get)
            #expect(String(buffer: defaulted.body).split(separator: "\n").count == CorralAPI.defaultConsoleLines)
            let bad = try await client.execute(uri: "/v1/vms/web/console?lines=-2", method: .get)
            #expect(bad.status == .badRequest)
            let missing = try await client.execute(uri: "/v1/vms/nope/console", method: .get)
            #expect(missing.status == .notFound)
        }
    }
}

struct QueryKeysTests {
    @Test func eachRouteTakesOnlyItsOwnQueryParameters() {
        #expect(QueryKeysMiddleware.allowed(method: .get, path: "/v1/vms/web/console") == ["lines", "follow"])
        #expect(QueryKeysMiddleware.allowed(method: .delete, path: "/v1/vms/web") == ["force", "volumes"])
        #expect(QueryKeysMiddleware.allowed(method: .get, path: "/v1/vms/web") == [])
        #expect(QueryKeysMiddleware.allowed(method: .get, path: "/v1/events") == ["history", "follow", "vm"])
        #expect(QueryKeysMiddleware.allowed(method: .delete, path: "/v1/vms/web/disks/d1") == ["deleteImage"])
    }
}
