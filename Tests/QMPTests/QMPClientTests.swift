import Foundation
import JSON
import Testing

@testable import QMP

@Suite("QMPClient against the scripted fake")
struct QMPClientTests {
    @Test func handshakeParsesGreetingAndSendsCapabilitiesFirst() async throws {
        let server = try FakeQMPServer()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        #expect(client.greeting.version == QMPVersion(major: 7, minor: 2, micro: 1, package: "fake-qmp"))
        #expect(client.greeting.capabilities == ["oob"])
        #expect(await client.isConnected)
        await client.close()
        #expect(await !client.isConnected)
        await server.finish()
    }

    @Test func executeReturnsTheReturnValueAndSendsArguments() async throws {
        let server = try FakeQMPServer()
        server.expect("query-status", arguments: .none, .reply(["status": "paused", "singlestep": false, "running": false]))
        server.expect("device_del", arguments: .equal(["id": "net1"]), .reply([:]))
        server.expect("query-version", .reply(["qemu": ["micro": 3, "minor": 1, "major": 8], "package": "v8.1.3"]))
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)

        let status = try await client.queryStatus()
        #expect(status.status == "paused")
        #expect(status.running == false)
        #expect(try await client.execute("device_del", ["id": "net1"]) == [:])
        #expect(try await client.queryVersion() == QMPVersion(major: 8, minor: 1, micro: 3, package: "v8.1.3"))

        await client.close()
        await server.finish()
    }

    @Test func qmpErrorBecomesTypedErrorWithClassDescAndCommand() async throws {
        let server = try FakeQMPServer()
        server.expect("device_del", .error(class: "DeviceNotFound", desc: "Device 'net9' not found"))
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)

        await #expect(throws: QMPError.commandFailed(command: "device_del", errorClass: "DeviceNotFound",
                                                     desc: "Device 'net9' not found")) {
            try await client.execute("device_del", ["id": "net9"])
        }
        let message = QMPError.commandFailed(command: "device_del", errorClass: "DeviceNotFound",
                                             desc: "Device 'net9' not found").description
        #expect(message == "QMP command 'device_del' failed: Device 'net9' not found (DeviceNotFound)")

        await client.close()
        await server.finish()
    }

    @Test func severalInFlightAnsweredInReverseOrder() async throws {
        let server = try FakeQMPServer()
        for name in ["first", "second", "third"] { server.expect(name, .delayed(.string("reply to \(name)"))) }
        server.releaseDelayed(.reversed)
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)

        // Send one at a time (waiting until the fake has each) so the order on the wire is known.
        let first = Task { try await client.execute("first") }
        await server.waitUntilReceived("first")
        let second = Task { try await client.execute("second") }
        await server.waitUntilReceived("second")
        let third = Task { try await client.execute("third") }

        #expect(try await third.value == "reply to third")
        #expect(try await second.value == "reply to second")
        #expect(try await first.value == "reply to first")

        await client.close()
        await server.finish()
    }

    @Test func eventsReachEverySubscriberAndFiltersApply() async throws {
        let server = try FakeQMPServer()
        server.expect("cont", .delayed([:]))
        server.event("RESUME")
        server.event("STOP", data: ["reason": "test"])
        server.event("RESUME")
        server.releaseDelayed()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let everything = client.events()
        let alsoEverything = client.events(nil)
        let stops = client.events(["STOP"])

        try await client.cont()
        await client.close()

        let all = await collect(everything)
        #expect(all.map(\.name) == ["RESUME", "STOP", "RESUME"])
        #expect(await collect(alsoEverything).map(\.name) == ["RESUME", "STOP", "RESUME"])
        let onlyStops = await collect(stops)
        #expect(onlyStops.map(\.name) == ["STOP"])
        #expect(onlyStops.first?.data == ["reason": "test"])
        #expect(onlyStops.first?.timestamp == 1_700_000_000.25)
        #expect(all.first?.data == [:])
        await server.finish()
    }

    @Test func eventsInterleavedBetweenCommandAndReply() async throws {
        let server = try FakeQMPServer()
        server.expect("query-status", .delayed(["status": "running", "running": true]))
        server.expect("stop", .delayed([:]))
        server.event("STOP")
        server.releaseDelayed(.explicit([0]))
        server.event("DEVICE_DELETED", data: ["device": "net1"])
        server.releaseDelayed(.explicit([1]))
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let events = client.events()

        let status = Task { try await client.queryStatus() }
        await server.waitUntilReceived("query-status")
        try await client.stop()
        #expect(try await status.value.status == "running")

        let names = [await nextEvent(events)?.name, await nextEvent(events)?.name]
        #expect(names == ["STOP", "DEVICE_DELETED"])

        await client.close()
        await server.finish()
    }

    @Test func eventsSentOutsideTheScriptAreDelivered() async throws {
        let server = try FakeQMPServer()
        server.expect("query-status", .delayed(["status": "running", "running": true]))
        server.releaseDelayed()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let events = client.events(["BALLOON_CHANGE"])
        let status = Task { try await client.queryStatus() }
        await server.waitUntilReceived("query-status")
        server.sendEvent("BALLOON_CHANGE", data: ["actual": 536_870_912])
        _ = try await status.value
        #expect(await nextEvent(events)?.data == ["actual": 536_870_912])
        await client.close()
        await server.finish()
    }

    @Test func perCallTimeout() async throws {
        let server = try FakeQMPServer()
        server.expect("query-block", .noReply)
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)

        await #expect(throws: QMPError.timeout(command: "query-block", after: .milliseconds(200))) {
            try await client.execute("query-block", timeout: .milliseconds(200))
        }
        #expect(await client.isConnected)
        await client.close()
        await server.finish()
    }

    @Test func lateReplyAfterTimeoutIsDroppedAndTheNextCallWorks() async throws {
        let server = try FakeQMPServer()
        server.expect("slow", .delayed("late value"))
        server.expect("query-status", .delayed(["status": "running", "running": true]))
        server.releaseDelayed(.received)  // the late reply to "slow" goes out first
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)

        await #expect(throws: QMPError.timeout(command: "slow", after: .milliseconds(200))) {
            try await client.execute("slow", timeout: .milliseconds(200))
        }
        let status = try await client.queryStatus()
        #expect(status.status == "running")

        await client.close()
        await server.finish()
    }

    @Test func replyWithUnknownIDIsDropped() async throws {
        let server = try FakeQMPServer()
        server.expect("query-status", .delayed(["status": "running", "running": true]))
        server.raw(#"{"return": "stray", "id": 424242}"#)
        server.raw(#"{"return": "no id at all"}"#)
        server.releaseDelayed()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        #expect(try await client.queryStatus().running)
        await client.close()
        await server.finish()
    }

    @Test func eofFailsEveryPendingCall() async throws {
        let server = try FakeQMPServer()
        for name in ["query-status", "query-block", "query-cpus-fast"] { server.expect(name, .noReply) }
        server.closeConnection()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let events = client.events()

        var calls: [(String, Task<JSONValue, any Error>)] = []
        for name in ["query-status", "query-block", "query-cpus-fast"] {
            calls.append((name, Task { try await client.execute(name) }))
            await server.waitUntilReceived(name)
        }
        for (name, call) in calls {
            do {
                _ = try await call.value
                Issue.record("\(name) succeeded after EOF")
            } catch let error as QMPError {
                #expect(error == .disconnected(command: name, reason: "QEMU closed the QMP connection (EOF)"))
                #expect(error.description == "QEMU closed the QMP connection (EOF) while waiting for '\(name)'")
            }
        }
        await client.waitForDisconnect()
        #expect(await !client.isConnected)
        #expect(await nextEvent(events) == nil)  // the stream finished
        await #expect(throws: QMPError.disconnected(command: "cont", reason: "QEMU closed the QMP connection (EOF)")) {
            try await client.cont()
        }
        await client.close()
        await server.finish()
    }

    @Test func closeReleasesTheSocketAndTheReaderThread() async throws {
        let server = try FakeQMPServer()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let connection = await client.connection
        #expect(!connection.socket.isClosed)
        #expect(!connection.readerFinished.isFulfilled)
        await client.close()
        // close() returns only after the reader thread closed the descriptor and signalled that it is leaving.
        #expect(connection.socket.isClosed)
        #expect(connection.readerFinished.isFulfilled)
        await server.finish()
    }

    @Test func eofReleasesTheSocketAndTheReaderThread() async throws {
        let server = try FakeQMPServer()
        server.closeConnection()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let connection = await client.connection
        await client.waitForDisconnect()
        _ = await connection.readerFinished.wait()
        #expect(connection.socket.isClosed)
        #expect(await client.disconnectReason == "QEMU closed the QMP connection (EOF)")
        await server.finish()
    }

    @Test func closeFailsPendingCallsAndIsIdempotent() async throws {
        let server = try FakeQMPServer()
        server.expect("query-status", .noReply)
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let call = Task { try await client.execute("query-status") }
        await server.waitUntilReceived("query-status")

        await client.close()
        await client.close()
        do {
            _ = try await call.value
            Issue.record("the call survived close()")
        } catch let error as QMPError {
            guard case .disconnected(let command, _) = error else {
                Issue.record("expected disconnected, got \(error)")
                return
            }
            #expect(command == "query-status")
        }
        await client.waitForDisconnect()
        await server.finish()
    }

    @Test func cancellingTheCallerFailsOnlyThatCall() async throws {
        let server = try FakeQMPServer()
        server.expect("query-migrate", .noReply)
        server.expect("query-status", .reply(["status": "running", "running": true]))
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)

        let call = Task { try await client.execute("query-migrate") }
        await server.waitUntilReceived("query-migrate")
        call.cancel()
        await #expect(throws: QMPError.cancelled(command: "query-migrate")) { try await call.value }
        #expect(try await client.queryStatus().running)

        await client.close()
        await server.finish()
    }

    @Test func quitTreatsTheHangUpAsSuccess() async throws {
        let server = try FakeQMPServer()
        server.expect("quit", .noReply)
        server.event("SHUTDOWN", data: ["guest": false, "reason": "host-qmp-quit"])
        server.closeConnection()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        let shutdowns = client.events(["SHUTDOWN"])
        try await client.quit()
        #expect(await nextEvent(shutdowns)?.data["reason"] == "host-qmp-quit")
        await client.waitForDisconnect()
        await server.finish()
    }

    @Test("a malformed greeting is a protocol error",
          arguments: ["{\"QMP\": oops}\r\n", "{\"hello\": 1}\r\n", "{\"QMP\": {\"capabilities\": []}}\r\n"])
    func malformedGreeting(greeting: String) async throws {
        let server = try FakeQMPServer(greeting: greeting, handshake: false)
        server.start()
        do {
            let client = try await QMPClient.connect(socketPath: server.path)
            Issue.record("connected despite the greeting \(greeting.debugDescription)")
            await client.close()
        } catch {
            guard case .protocolError(let message) = error else {
                Issue.record("expected protocolError, got \(error)")
                return
            }
            #expect(!message.isEmpty)
        }
        await server.finish()
    }

    @Test func capabilitiesRefusedFailsConnect() async throws {
        let server = try FakeQMPServer(handshake: false)
        server.expect("qmp_capabilities", .error(class: "CommandNotFound", desc: "Capabilities negotiation is already complete"))
        server.start()
        await #expect(throws: QMPError.commandFailed(command: "qmp_capabilities", errorClass: "CommandNotFound",
                                                     desc: "Capabilities negotiation is already complete")) {
            _ = try await QMPClient.connect(socketPath: server.path)
        }
        await server.finish()
    }

    @Test func missingSocketFailsAfterTheRetryWindow() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID()).sock").path
        do {
            _ = try await QMPClient.connect(socketPath: path, connectTimeout: .milliseconds(300))
            Issue.record("connected to a socket that does not exist")
        } catch {
            guard case .connectFailed(let failedPath, let reason) = error else {
                Issue.record("expected connectFailed, got \(error)")
                return
            }
            #expect(failedPath == path)
            #expect(reason.contains("does not exist"))
            #expect(error.description.hasPrefix("cannot open QMP socket \(path): "))
        }
    }

    @Test func socketThatAppearsLateIsPickedUpByTheRetry() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("late-\(UUID().uuidString.prefix(8))")
        let holder = LateServer()
        // Start the server only once connect() is already retrying.
        let starter = Task {
            try await Task.sleep(for: .milliseconds(150))
            holder.server = try FakeQMPServer(at: directory)
            holder.server?.start()
        }
        let client = try await QMPClient.connect(socketPath: directory.appendingPathComponent("qmp.sock").path,
                                                 connectTimeout: .seconds(20))
        try await starter.value
        #expect(client.greeting.version.major == 7)
        await client.close()
        await holder.server?.finish()
    }

    @Test func transcriptSeesSentReceivedAndEvents() async throws {
        let server = try FakeQMPServer()
        server.expect("stop", .delayed([:]))
        server.event("STOP")
        server.releaseDelayed()
        server.start()
        let recorder = TranscriptRecorder()
        let client = try await QMPClient.connect(socketPath: server.path, transcript: recorder.callback)
        try await client.stop()
        await client.close()
        await server.finish()

        let lines = recorder.all.map { "\($0.direction.rawValue) \($0.text)" }
        #expect(lines == [
            "received " + FakeQMPServer.defaultGreeting.compactText,
            #"sent {"execute":"qmp_capabilities","id":1}"#,
            #"received {"return":{},"id":1}"#,
            #"sent {"execute":"stop","id":2}"#,
            #"event {"timestamp":{"seconds":1700000000,"microseconds":250000},"event":"STOP","data":{}}"#,
            #"received {"return":{},"id":2}"#,
        ])
        #expect(recorder.all.allSatisfy { $0.time > 1_600_000_000 })
    }

    @Test func errorMessagesAreOneReadableLine() {
        let errors: [QMPError] = [
            .connectFailed(path: "/run/vm/qmp.sock", reason: "permission denied"),
            .commandFailed(command: "cont", errorClass: "GenericError", desc: "Resetting the Virtual Machine is required"),
            .timeout(command: "query-status", after: .milliseconds(1500)),
            .disconnected(command: "stop", reason: "QEMU closed the QMP connection (EOF)"),
            .protocolError("malformed JSON from QEMU"),
            .cancelled(command: "migrate"),
        ]
        for error in errors {
            #expect(!error.description.contains("\n"))
        }
        #expect(QMPError.timeout(command: "query-status", after: .seconds(10)).description
            == "QMP command 'query-status' got no reply within 10 s; QEMU may be hung or busy"
            + " (check the VM's QMP transcript, or raise the timeout)")
    }
}

@Suite("the fake QMP server is strict")
struct FakeQMPServerTests {
    @Test func reportsUnexpectedCommandsAndUnusedExpectations() async throws {
        let server = try FakeQMPServer()
        server.expect("query-status", .reply(["status": "running", "running": true]))
        server.expect("stop", .reply([:]))
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        await #expect(throws: QMPError.commandFailed(command: "cont", errorClass: "CommandNotFound",
                                                     desc: "unexpected command")) {
            try await client.cont()
        }
        #expect(try await client.queryStatus().running)
        await client.close()

        #expect(await server.waitUntilDone())
        #expect(server.failures() == [
            #"fake QMP: expected 'query-status' but the client sent {"execute":"cont","id":2}"#,
            "fake QMP: expectation never used: expect 'stop'",
        ])
        server.stop()
    }

    @Test func reportsCommandsAfterTheScriptEnded() async throws {
        let server = try FakeQMPServer()
        server.start()
        let client = try await QMPClient.connect(socketPath: server.path)
        await #expect(throws: QMPError.self) { try await client.stop() }
        await client.close()
        #expect(await server.waitUntilDone())
        #expect(server.failures() == ["fake QMP: unexpected command 'stop' after the script ended"])
        server.stop()
    }
}

/// Holds a server created later by another task.
final class LateServer: @unchecked Sendable {
    var server: FakeQMPServer?
}
