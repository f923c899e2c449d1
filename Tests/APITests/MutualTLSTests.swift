import API
import APITLS
import CorralControl
import CorralModel
import CorralWire
import Foundation
import Supervisor
import Testing

/// `--api-tls`: the TCP listener speaks TLS and takes only clients whose certificate chains to the CA; the client
/// (`CorralClient`, as a migration source uses it) checks the daemon's certificate and the address it names. Real
/// certificates from scripts/make-test-certs (their server certificate names 127.0.0.1), a real daemon on loopback.
@Suite(.timeLimit(.minutes(1))) struct MutualTLSTests {
    let fake = FakeControl(vms: [FakeControl.status("web")])

    /// Throw-away credentials in a fresh folder (`wrong-ca/` holds a second, unrelated set).
    static func certificates() async throws -> String {
        let folder = NSTemporaryDirectory() + "corral-mtls-\(UUID().uuidString.prefix(8))"
        let made = try await ProcessLauncher.run(BinaryTCPTests.repoRoot + "/scripts/make-test-certs", [folder, "127.0.0.1"])
        try #require(made.status == .exited(0), "make-test-certs: \(made.output)")
        return folder
    }

    enum Outcome: Equatable {
        case success([String])
        case failure(String)
    }

    /// What a call made with `tls` ends in: the VM names, or the client's error text.
    func list(port: Int, tls: TLSFiles?, token: String = "mtls-token") async -> Outcome {
        do {
            let names = try await CorralClient.withClient(.tcp(try HostPort(host: "127.0.0.1", port: port), token: token),
                                                          tls: tls) { try await $0.list().map(\.name) }
            return .success(names)
        } catch {
            return .failure("\(error)")
        }
    }

    @Test func onlyAClientWithACertificateFromTheCAGetsAnAnswer() async throws {
        let certs = try await Self.certificates()
        defer { try? FileManager.default.removeItem(atPath: certs) }
        try await DaemonHarness.run(fake, token: "mtls-token", tls: TLSFiles.server(in: certs)) { daemon in
            let port = try #require(daemon.tcpPort)
            // The right CA and a client certificate from it: served (and the token still counts).
            #expect(await list(port: port, tls: .client(in: certs)) == .success(["web"]))
            guard case .failure(let badToken) = await list(port: port, tls: .client(in: certs), token: "wrong") else {
                Issue.record("a wrong token over TLS was served")
                return
            }
            #expect(badToken.contains("unauthorized") || badToken.contains("token"), "\(badToken)")
            // Plain HTTP to the TLS listener: no answer.
            guard case .failure = await list(port: port, tls: nil) else {
                Issue.record("plain HTTP was served by the TLS listener")
                return
            }
            // A client certificate from another CA (trusting the right CA for the server): refused by the daemon.
            let stranger = TLSFiles(caFile: certs + "/ca-cert.pem",
                                                certificateFile: certs + "/wrong-ca/client-cert.pem",
                                                keyFile: certs + "/wrong-ca/client-key.pem")
            guard case .failure(let refused) = await list(port: port, tls: stranger) else {
                Issue.record("a client certificate from another CA was accepted")
                return
            }
            #expect(refused.contains("TLS"), "\(refused)")
            // A client that trusts another CA: it refuses the daemon's certificate itself, and says why.
            guard case .failure(let distrust) = await list(port: port, tls: .client(in: certs + "/wrong-ca")) else {
                Issue.record("the client accepted a daemon certificate from a CA it does not trust")
                return
            }
            #expect(distrust.contains("the server's certificate") && distrust.contains("mutual TLS"), "\(distrust)")
        }
        #expect(await fake.calls == [.list], "only the authenticated, authorized request reached the daemon's control")
    }

    /// The client checks that the daemon's certificate names the address it dialled, not only that its CA signed it.
    @Test func aCertificateForAnotherAddressIsRefusedByTheClient() async throws {
        let folder = NSTemporaryDirectory() + "corral-mtls-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // Names 192.0.2.1, 192.0.2.2 and localhost only.
        let made = try await ProcessLauncher.run(BinaryTCPTests.repoRoot + "/scripts/make-test-certs", [folder])
        try #require(made.status == .exited(0), "make-test-certs: \(made.output)")
        try await DaemonHarness.run(fake, token: "mtls-token", tls: TLSFiles.server(in: folder)) { daemon in
            let port = try #require(daemon.tcpPort)
            guard case .failure(let refused) = await list(port: port, tls: .client(in: folder)) else {
                Issue.record("a certificate that does not name 127.0.0.1 was accepted")
                return
            }
            #expect(refused.contains("the server's certificate") && refused.lowercased().contains("mismatch"), "\(refused)")
        }
    }

    @Test func missingCertificatesStopTheDaemonWithTheFileNamed() throws {
        let missing = TLSFiles.server(in: "/nonexistent/tls")
        #expect(throws: DaemonError.self) { try MutualTLS.check(missing) }
        do {
            try MutualTLS.check(missing)
        } catch {
            #expect(error.description.contains("/nonexistent/tls/ca-cert.pem") && error.description.contains("--api-tls"),
                    "\(error.description)")
        }
    }
}
