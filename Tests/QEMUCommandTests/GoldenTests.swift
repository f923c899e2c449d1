import Foundation
import Profiles
import QEMUCommand
import Testing

/// `profiles/NAME.yaml` → `Tests/QEMUCommandTests/Golden/NAME.args` (one argument per line, the repo root
/// written as `$ROOT`). Any difference fails; `CORRAL_UPDATE_GOLDEN=1 swift test …` rewrites the files.
@Suite("golden argv")
struct GoldenTests {
    static let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let goldenDir = testsDir.appendingPathComponent("Golden")
    static let repoRoot = testsDir.deletingLastPathComponent().deletingLastPathComponent()
    static let profilesDir = repoRoot.appendingPathComponent("profiles")
    static var updating: Bool { ProcessInfo.processInfo.environment["CORRAL_UPDATE_GOLDEN"] == "1" }

    static func profileNames() -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: profilesDir.path)) ?? []
        return files.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test("there are example profiles to check")
    func profilesExist() {
        #expect(!Self.profileNames().isEmpty, "no profiles/*.yaml under \(Self.profilesDir.path)")
    }

    @Test("argv matches the golden file", arguments: profileNames())
    func golden(name: String) throws {
        let path = Self.profilesDir.appendingPathComponent(name + ".yaml").path
        let profile: Profile
        do {
            profile = try ProfileLoader(checkFiles: false).load(path: path)
        } catch {
            Issue.record("profiles/\(name).yaml does not load: \(error)")
            return
        }
        let accel: ResolvedAccel = profile.accel == .tcg ? .tcg : .kvm
        // A KVM host is assumed to have /dev/vhost-net too: taps corral makes then carry vhost descriptors.
        let runtime = RuntimeOptions(accel: accel, qmpSocket: "/run/corral/vms/\(profile.name)/qmp.sock",
                                     serialLog: "/var/lib/corral/vms/\(profile.name)/serial.log",
                                     vhostNet: accel == .kvm)
        // With cloudInit, the seed where the daemon puts it.
        let config = LiveConfig(profile: profile).withSeed("/var/lib/corral/vms/\(profile.name)/cidata.iso")
        let actual = Self.render(QEMUArgv.build(config, runtime))

        let goldenURL = Self.goldenDir.appendingPathComponent(name + ".args")
        if Self.updating {
            try FileManager.default.createDirectory(at: Self.goldenDir, withIntermediateDirectories: true)
            try actual.write(to: goldenURL, atomically: true, encoding: .utf8)
            return
        }
        guard let expected = try? String(contentsOf: goldenURL, encoding: .utf8) else {
            Issue.record("""
                missing golden file Tests/QEMUCommandTests/Golden/\(name).args; create it with
                  CORRAL_UPDATE_GOLDEN=1 swift test --filter QEMUCommandTests
                and review it before committing
                """)
            return
        }
        if expected != actual {
            Issue.record("""
                argv for profiles/\(name).yaml differs from Golden/\(name).args (- golden, + now); \
                if the change is intended, rerun with CORRAL_UPDATE_GOLDEN=1 and review the diff:
                \(lineDiff(expected, actual))
                """)
        }
    }

    @Test("every golden file belongs to a profile")
    func noStaleGoldenFiles() {
        guard !Self.updating else { return }
        let goldens = ((try? FileManager.default.contentsOfDirectory(atPath: Self.goldenDir.path)) ?? [])
            .filter { $0.hasSuffix(".args") }.map { String($0.dropLast(5)) }
        let stale = Set(goldens).subtracting(Self.profileNames())
        #expect(stale.isEmpty, "golden files without a profile: \(stale.sorted()); delete them")
    }

    /// One argument per line, the repository root replaced by `$ROOT`, newlines inside an argument as `\n`.
    static func render(_ argv: [String]) -> String {
        let root = repoRoot.standardizedFileURL.path
        return argv.map { arg in
            arg.replacingOccurrences(of: root, with: "$ROOT").replacingOccurrences(of: "\n", with: "\\n")
        }.joined(separator: "\n") + "\n"
    }
}

/// A line diff (longest common subsequence) showing changed lines with one line of context.
func lineDiff(_ old: String, _ new: String) -> String {
    let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    // lcs[i][j] = length of the LCS of a[i...] and b[j...]
    var lcs = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in stride(from: a.count - 1, through: 0, by: -1) {
        for j in stride(from: b.count - 1, through: 0, by: -1) {
            lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
        }
    }
    var lines: [(mark: Character, text: String)] = []
    var (i, j) = (0, 0)
    while i < a.count || j < b.count {
        if i < a.count && j < b.count && a[i] == b[j] {
            lines.append((" ", a[i])); i += 1; j += 1
        } else if i < a.count && (j == b.count || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.append(("-", a[i])); i += 1
        } else {
            lines.append(("+", b[j])); j += 1
        }
    }
    let changed = lines.indices.filter { lines[$0].mark != " " }
    var out: [String] = []
    var lastShown = -1
    for index in lines.indices where changed.contains(where: { abs($0 - index) <= 1 }) {
        if lastShown >= 0 && index > lastShown + 1 { out.append("  …") }
        out.append("\(lines[index].mark) \(lines[index].text)")
        lastShown = index
    }
    return out.joined(separator: "\n")
}

@Test("lineDiff marks removed and added lines with context")
func lineDiffShape() {
    let diff = lineDiff("a\nb\nc\nd\ne\nf\ng", "a\nb\nC\nd\ne\nf\ng\nh")
    #expect(diff == "  b\n- c\n+ C\n  d\n  …\n  g\n+ h")
}
