// `corral-bench qmp-up --argv-file FILE --socket QMP.SOCK [--output FILE] [--timeout S]`
//
// The baseline of scripts/bench-launch: starts QEMU with exactly the argv in FILE (one argument per line, as
// `corral argv` prints it), connects to its QMP socket, does the handshake and polls `query-status` until the VM
// runs, then exits and leaves QEMU running (in its own session, like the daemon's QEMUs); the script kills it by
// the pid file in the argv. No profile, no state files, no daemon: what any launcher has to do at the least.

import Foundation
import JSON
import QMP
import CorralControl
import CorralCore
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

func runQMPUp(_ arguments: [String]) {
    let flags = Flags(arguments) { usage() }
    guard let argvFile = flags.string("--argv-file"), let socketPath = flags.string("--socket") else { usage() }
    let output = flags.string("--output") ?? "/dev/null"
    let timeout = flags.double("--timeout", default: 30)

    guard let text = try? String(contentsOfFile: argvFile, encoding: .utf8) else { fail("cannot read \(argvFile)") }
    let argv = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    guard !argv.isEmpty else { fail("\(argvFile) holds no argv") }

    let start = monotonicNanoseconds()
    unlink(socketPath)
    let process: ProcessHandle
    do {
        // Like corral: the binary found in PATH once, then spawned by its path.
        var spec = LaunchSpec(argv: argv, outputFile: output, detach: true)
        spec.path = HostProbe.findExecutable(argv[0])
        process = try ProcessLauncher.launch(spec)
    } catch {
        fail("cannot start \(argv[0]): \(error)")
    }

    var qmp: RawQMP?
    while qmp == nil {
        if process.hasExited { fail("QEMU exited before its QMP socket answered (see \(output))") }
        guard seconds(since: start) < timeout else { fail("QMP socket \(socketPath) did not answer in \(timeout) s") }
        qmp = RawQMP(path: socketPath)
        if qmp == nil { usleep(1000) }
    }
    guard let qmp else { fail("unreachable") }
    qmp.handshake()
    while true {
        let reply = qmp.execute("{\"execute\":\"query-status\"}")
        if reply["return"]?["status"]?.stringValue == "running" { break }
        guard seconds(since: start) < timeout else { fail("QEMU did not reach running in \(timeout) s") }
        usleep(1000)
    }
    qmp.close()
    note("qmp-up: running after \(decimal(seconds(since: start) * 1000)) ms (pid \(process.pid))")
}
