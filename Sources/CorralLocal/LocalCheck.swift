import ArgumentParser
import CorralCLI
import JSON
import Profiles

/// `corral check`, done: loads each profile and reports every diagnostic.
struct LocalCheck: ParsableCommand {
    static let configuration = CheckCommand.configuration

    @OptionGroup var arguments: CheckArguments

    func run() throws {
        var results: [JSONValue] = []
        var failed = false
        for path in arguments.profiles {
            do {
                let profile = try ProfileLoader(checkFiles: !arguments.noFileChecks).load(path: path)
                results.append(["file": .string(path), "valid": true, "name": .string(profile.name), "errors": []])
                if !arguments.json {
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
                if !arguments.json {
                    for diagnostic in error.diagnostics { Terminal.err(diagnostic.description) }
                }
            }
        }
        if arguments.json { Terminal.out(JSONValue.array(results).prettyText) }
        if failed { throw ExitCode(ExitCodeValue.invalid.rawValue) }
    }
}
