import ArgumentParser
import JSON
import Profiles

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate profiles and report every problem with FILE:LINE:COL.",
        discussion: "Exits 2 when any profile is invalid.")

    @Argument(help: "Profile files (YAML).")
    var profiles: [String]

    @Flag(help: "Skip checks that files (kernel, initrd, disk images) exist.")
    var noFileChecks = false

    @Flag(help: "Print a JSON array of {file, valid, name, errors[]}.")
    var json = false

    func validate() throws {
        if profiles.isEmpty { throw ValidationError("give at least one profile") }
    }

    func run() async throws {
        var results: [JSONValue] = []
        var failed = false
        for path in profiles {
            do {
                let profile = try ProfileLoader(checkFiles: !noFileChecks).load(path: path)
                results.append(["file": .string(path), "valid": true, "name": .string(profile.name), "errors": []])
                if !json {
                    Terminal.out("\(path): ok (\(profile.name): \(profile.cpu.count)/\(profile.cpu.max) vCPUs, "
                        + "\(profile.memory.size) RAM, \(profile.disks.count) disks, \(profile.nics.count) NICs)")
                }
            } catch {
                failed = true
                let errors: [JSONValue] = error.diagnostics.map {
                    ["file": .string($0.file), "line": .int(Int64($0.line)), "column": .int(Int64($0.column)),
                     "field": .string($0.path), "message": .string($0.message)]
                }
                results.append(["file": .string(path), "valid": false, "errors": .array(errors)])
                if !json {
                    for diagnostic in error.diagnostics { Terminal.err(diagnostic.description) }
                }
            }
        }
        if json { Terminal.out(JSONValue.array(results).prettyText) }
        if failed { throw ExitCode(ExitCodeValue.invalid.rawValue) }
    }
}
