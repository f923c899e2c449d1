import CorralControl
import CorralModel
import CorralWire
import Foundation
import QEMUCommand

/// A live config as it arrives from a peer daemon (`POST /v1/migrations/incoming`) or is read back from
/// `live.json`: JSON → `IncomingRequest` → the checks the destination makes → the argv it launches.
///
/// Properties: the daemon either refuses the request or builds an argv, with no element holding a NUL byte.
enum LiveConfigFuzz {
    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        guard let request = try? WireCoding.decode(IncomingRequest.self, from: Data(data)) else { return }
        guard request.problems().isEmpty else { return }
        let runtime = RuntimeOptions(accel: request.accel, qmpSocket: "/run/corral/vms/x/qmp.sock",
                                     serialLog: "/var/lib/corral/vms/x/serial.log", startPaused: true,
                                     incoming: "defer")
        let argv = QEMUArgv.build(request.config, runtime)
        if let bad = argv.first(where: { $0.utf8.contains(0) }) {
            throw FuzzFailure("no argv element holds a NUL byte (exec would cut it short)", bad.debugDescription)
        }
    }
}
