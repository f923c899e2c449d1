import CorralCLI

/// The executable's entry point; everything lives in CorralCLI.
@main
enum CorralMain {
    static func main() { Corral.runAndExit() }
}
