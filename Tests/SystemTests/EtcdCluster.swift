import Foundation
import Supervisor
import Testing

/// A 3-member etcd on loopback for one test (scripts/etcd-cluster), stopped by `stop()`.
struct EtcdCluster {
    static let script = Guest.repoRoot + "/scripts/etcd-cluster"
    let folder: String
    let urls: [String]

    static func start(in folder: String, port: Int) async throws -> EtcdCluster {
        // `port` only names the test's intent; the script picks free ports (suites start clusters at once).
        _ = port
        let up = try await ProcessLauncher.run(script, ["up", folder, "--port", "auto"])
        let cluster = EtcdCluster(folder: folder,
                                  urls: (up.output.split(separator: "\n").last ?? "").split(separator: ",").map(String.init))
        guard up.status == .exited(0) else {
            cluster.stop()
            try #require(up.status == .exited(0), "etcd-cluster up: \(up.output)")
            return cluster
        }
        return cluster
    }

    func stop() {
        let down = Process()
        down.executableURL = URL(fileURLWithPath: Self.script)
        down.arguments = ["down", folder]
        try? down.run()
        down.waitUntilExit()
    }
}
