import Foundation
import Supervisor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The confined launch QEMU gets, seen from inside the child (/proc/self/status), with a shell as the program.
@Suite(.enabled(if: getuid() == 0, "changing identity needs root"))
struct ConfinedSpawnTests {
    func run(_ script: String, confinement: Confinement, passing: [Int32: Int32] = [:]) async throws -> (Supervisor.ExitStatus, String) {
        let output = "/tmp/corral-confined-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(output) }
        var spec = LaunchSpec(executable: "/bin/sh", arguments: ["-c", script], outputFile: output)
        spec.confinement = confinement
        spec.passing = passing
        let handle = try ProcessLauncher.launch(spec)
        let status = await handle.waitForExit()
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    func field(_ name: String, in status: String) -> String? {
        status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    @Test func theChildRunsAsItsUidWithNoCapabilitiesNoGroupsAndNoNewPrivileges() async throws {
        let (status, text) = try await run("cat /proc/self/status; ulimit -c; ulimit -l",
                                           confinement: Confinement(uid: 2_000_123, gid: 2_000_123, memlockBytes: 65536))
        #expect(status == .exited(0), "\(text)")
        #expect(field("Uid", in: text) == "2000123\t2000123\t2000123\t2000123", "\(text)")
        #expect(field("Gid", in: text) == "2000123\t2000123\t2000123\t2000123", "\(text)")
        #expect(field("Groups", in: text) == "", "\(text)")
        #expect(field("CapEff", in: text) == "0000000000000000")
        #expect(field("CapPrm", in: text) == "0000000000000000")
        #expect(field("CapBnd", in: text) == "0000000000000000")
        #expect(field("CapAmb", in: text) == "0000000000000000")
        #expect(field("NoNewPrivs", in: text) == "1")
        let limits = text.split(separator: "\n").suffix(2).map(String.init)
        #expect(limits == ["0", "64"], "no core dumps; memlock 64 KiB: \(limits)")
    }

    @Test func handedOverDescriptorsArriveAndNothingElseLeaks() async throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        // Our own descriptors (the pipe's read end, anything the test runner holds) must not reach the child.
        let (status, text) = try await run("echo passed >&5; ls /proc/self/fd",
                                           confinement: Confinement(uid: 2_000_124, gid: 2_000_124), passing: [5: ends[1]])
        #expect(status == .exited(0), "\(text)")
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(ends[0], &buffer, buffer.count)
        #expect(String(decoding: buffer.prefix(max(0, n)), as: UTF8.self) == "passed\n")
        let fds = Set(text.split(separator: "\n").compactMap { Int($0) })
        #expect(fds.isSubset(of: [0, 1, 2, 3, 5]), "only stdio, 5 and ls's own directory: \(fds)")
    }

    @Test func aStepThatFailsInTheChildIsNamed() async throws {
        var spec = LaunchSpec(executable: "/nonexistent/qemu", arguments: [])
        spec.confinement = Confinement(uid: 2_000_125, gid: 2_000_125)
        #expect { try ProcessLauncher.launch(spec) } throws: { error in
            "\(error)".contains("not found") || "\(error)".contains("execve")
        }
        // The child cannot read a root-only file.
        let (status, text) = try await run("cat /etc/shadow", confinement: Confinement(uid: 2_000_126, gid: 2_000_126))
        #expect(status == .exited(1) && text.contains("Permission denied"), "\(text)")
    }
}
