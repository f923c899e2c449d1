import Foundation
import ArgumentParser
import Profiles
import QEMUCommand
import Supervisor

/// Loading a profile for a command: prints every diagnostic and exits 2 when invalid.
enum ProfileInput {
    static func load(_ path: String, checkFiles: Bool = true) throws -> Profile {
        do {
            return try ProfileLoader(checkFiles: checkFiles).load(path: path)
        } catch {
            for diagnostic in error.diagnostics { Terminal.err(diagnostic.description) }
            let count = error.diagnostics.count
            Terminal.err("\(path): \(count) error\(count == 1 ? "" : "s")")
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
    }
}

/// `--accel` override shared by commands that start or show a VM.
struct AccelOption: ParsableArguments {
    @Option(name: .long, help: "Override the profile's accelerator: kvm, tcg or auto.")
    var accel: Accel?

    func resolve(for profile: Profile) -> ResolvedAccel {
        HostProbe.resolve(accel ?? profile.accel)
    }
}

extension Accel: ExpressibleByArgument {}

/// Where VM state lives: --state-dir, then CORRAL_STATE_DIR, then /var/lib/corral.
package struct StateDirOption: ParsableArguments {
    @Option(name: .long, help: "State root (default: $CORRAL_STATE_DIR or /var/lib/corral).")
    var stateDir: String?

    package init() {}

    package var resolved: String {
        if let stateDir { return stateDir }
        if let env = ProcessInfo.processInfo.environment["CORRAL_STATE_DIR"], !env.isEmpty { return env }
        return "/var/lib/corral"
    }
}
