import ArgumentParser
import CorralModel
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `--accel` override shared by commands that start or show a VM.
package struct AccelOption: ParsableArguments {
    @Option(name: .long, help: "Override the profile's accelerator: kvm, tcg or auto.")
    package var accel: Accel?

    package init() {}
}

extension Accel: ExpressibleByArgument {}

extension RequestProblems {
    /// How a command's `validate()` reports what its request's `validate()` found: one problem per line.
    var validationError: ValidationError { ValidationError(messages.joined(separator: "\n")) }
}

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
