import ArgumentParser
import CorralCLI
import CorralModel
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

extension AccelOption {
    /// The accelerator QEMU gets: `--accel`, else the profile's, with `auto` decided by this host.
    func resolve(for profile: Profile) -> ResolvedAccel {
        HostProbe.resolve(accel ?? profile.accel)
    }
}
