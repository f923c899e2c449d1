import CorralCLI

/// The executable's entry point; everything lives in CorralCLI so tests can reach it.
@main
extension Corral {}
