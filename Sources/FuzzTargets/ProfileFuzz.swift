#if canImport(Glibc)
import Glibc
#endif
import CorralModel
import Foundation
import Profiles
import QEMUCommand

/// Profile loading. The input is one or more files separated by a line `#@file`: the first is `/vm/p.yaml`, the
/// next `/vm/base.yaml`, then `/vm/base2.yaml`, … (so `extends: base.yaml` reaches the second). A few disk and
/// kernel paths exist, so file checks pass and fail.
///
/// Properties: a load returns a profile or throws at least one diagnostic, each in one of the files, on one of its
/// lines (0 for whole-file problems), with a message; a profile that loads is valid (name, vCPU counts, list
/// limits), survives the JSON round trip `live.json` puts it through, and turns into an argv without a NUL byte;
/// and a load takes well under a second of CPU whatever the input (the limits in `ProfileLimits`). CPU time of this
/// thread, not wall-clock time: a loaded machine that does not schedule the fuzzer for two seconds (seen in a long run
/// beside builds) is not a slow input.
enum ProfileFuzz {
    static let separator = "\n#@file\n"
    static let existing: Set<String> = ["/vm/disk.qcow2", "/vm/data.raw", "/vm/vmlinuz", "/vm/initrd.img",
                                        "/img/a.qcow2"]
    static let budget = Duration.seconds(2)

    /// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
    static func threadCPUTime() -> Duration {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return .seconds(spec.tv_sec) + .nanoseconds(spec.tv_nsec)
    }

    static func files(_ text: String) -> [(path: String, text: String)] {
        let parts = text.components(separatedBy: separator)
        return parts.enumerated().map { index, part in
            let path = index == 0 ? "/vm/p.yaml" : index == 1 ? "/vm/base.yaml" : "/vm/base\(index).yaml"
            return (path, part)
        }
    }

    static func run(_ data: [UInt8]) throws(FuzzFailure) {
        // A profile file that is not UTF-8 is refused by the file source before the loader sees it.
        guard let text = String(validating: data, as: UTF8.self) else { return }
        let files = files(text)
        let source = InMemorySource(files: Dictionary(files, uniquingKeysWith: { first, _ in first }),
                                    existing: existing, currentDirectory: "/vm")
        let loader = ProfileLoader(checkFiles: true, source: source)
        let start = threadCPUTime()
        let outcome: Result<Profile, ProfileErrors>
        do { outcome = .success(try loader.load(path: "/vm/p.yaml")) } catch { outcome = .failure(error) }
        let elapsed = threadCPUTime() - start
        try require(elapsed < budget, "a load takes less than \(budget) of CPU", "took \(elapsed)")

        switch outcome {
        case .failure(let errors):
            try checkDiagnostics(errors.diagnostics, files: files)
        case .success(let profile):
            try checkProfile(profile)
        }
    }

    static func checkDiagnostics(_ diagnostics: [Diagnostic], files: [(path: String, text: String)])
        throws(FuzzFailure)
    {
        try require(!diagnostics.isEmpty, "a refused profile has at least one diagnostic")
        for diagnostic in diagnostics {
            guard let file = files.first(where: { $0.path == diagnostic.file }) else {
                throw FuzzFailure("a diagnostic names one of the profile's files", diagnostic.description)
            }
            let lines = yamlLines(file.text)
            try require((0...lines + 1).contains(diagnostic.line), "a diagnostic's line is in its file",
                        "\(diagnostic) (the file has \(lines) lines)")
            try require(diagnostic.column >= 0 && (diagnostic.line > 0 || diagnostic.column == 0),
                        "a diagnostic's column is a position", diagnostic.description)
            try require(!diagnostic.message.isEmpty, "a diagnostic has a message", diagnostic.description)
        }
    }

    /// Lines as YAML counts them: CR LF, CR, LF, NEL, LS and PS each end one (a bare CR is a line break to
    /// the YAML library, so a diagnostic after one is on a later line than an LF count says).
    static func yamlLines(_ text: String) -> Int {
        var lines = 1
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": if previous != "\r" { lines += 1 }
            case "\r", "\u{85}", "\u{2028}", "\u{2029}": lines += 1
            default: break
            }
            previous = scalar
        }
        return lines
    }

    static func checkProfile(_ profile: Profile) throws(FuzzFailure) {
        let problems = profile.problems()
        try require(problems.isEmpty, "a loaded profile passes the checks a peer's profile gets", "\(problems)")
        try require(VMName.isValid(profile.name), "a loaded profile has a valid name", profile.name)
        try require(1 <= profile.cpu.count && profile.cpu.count <= profile.cpu.max && profile.cpu.max <= 255,
                    "a loaded profile has 1 ≤ cpu.count ≤ cpu.max ≤ 255", "\(profile.cpu)")
        let limit = ProfileLimits.listItems
        try require(profile.disks.count <= limit && profile.nics.count <= limit && profile.cpu.pinning.count <= limit,
                    "a loaded profile's lists are within \(limit) items")

        let stored: Profile
        do {
            stored = try JSONDecoder().decode(Profile.self, from: JSONEncoder().encode(profile))
        } catch {
            throw FuzzFailure("a loaded profile survives the JSON round trip", "\(error)")
        }
        try require(stored == profile, "a loaded profile survives the JSON round trip unchanged",
                    "\(profile) became \(stored)")

        for accel in [ResolvedAccel.kvm, .tcg] {
            let runtime = RuntimeOptions(accel: accel, qmpSocket: "/run/corral/vms/\(profile.name)/qmp.sock",
                                         serialLog: "/var/lib/corral/vms/\(profile.name)/serial.log")
            let argv = QEMUArgv.build(LiveConfig(profile: profile), runtime)
            try require(argv.first == profile.qemu.binary, "argv starts with the QEMU binary", "\(argv.prefix(1))")
            if let bad = argv.first(where: { $0.utf8.contains(0) }) {
                throw FuzzFailure("no argv element holds a NUL byte (exec would cut it short)", bad.debugDescription)
            }
        }
    }
}
