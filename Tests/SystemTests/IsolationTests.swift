import CorralModel
import Foundation
import Supervisor
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Every QEMU unprivileged and confined to its own VM's files, checked on real QEMUs running the test guest: what
/// the kernel says about each QEMU, what one VM's uid can open of the other's, and that every disk gets its owner
/// and mode back.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10)))
struct IsolationTests {
    typealias Daemon = DaemonCLITests.Daemon

    /// `/proc/PID/status` fields.
    static func procStatus(_ pid: Int32) -> [String: String] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// Runs `python3 -c script` as `uid` (confined like a QEMU); its exit status and output.
    static func asUID(_ uid: UInt32, _ script: String, root: String) async throws -> (Supervisor.ExitStatus, String) {
        let output = root + "/as-\(uid)-\(UInt32.random(in: 0...UInt32.max)).out"
        var spec = LaunchSpec(executable: "/usr/bin/python3", arguments: ["-c", script], outputFile: output)
        spec.confinement = Confinement(uid: uid, gid: uid)
        let status = await (try ProcessLauncher.launch(spec)).waitForExit()
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// A python snippet that tries `action` on `path` and prints OK or the errno name.
    static func attempt(_ action: String, _ path: String) -> String {
        let body = action == "connect"
            ? "import socket; s = socket.socket(socket.AF_UNIX); s.connect(\(pythonString(path)))"
            : "open(\(pythonString(path)), 'rb').read(1)"
        return "import errno\ntry:\n    \(body)\n    print('OK')\nexcept OSError as e:\n    print(errno.errorcode.get(e.errno, e.errno))"
    }

    static func pythonString(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "\\'") + "'" }

    static func ownerAndMode(_ path: String) -> (UInt32, UInt32, UInt32)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (info.st_uid, info.st_gid, UInt32(info.st_mode & 0o7777))
    }

    @Test func eachQEMURunsAsItsOwnUidWithoutPrivilegesAndCannotReachTheOtherVM() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("iso")
        defer { DaemonCLITests.cleanUp(root) }
        // The disks' folder is open to all, so a refusal below comes from the disk's own owner and mode.
        chmod(root, 0o755)
        let disks = root + "/disks"
        try FileManager.default.createDirectory(atPath: disks, withIntermediateDirectories: true)
        chmod(disks, 0o755)
        let daemon = try await Daemon.start(root: root)

        // Disks that exist before, with an owner and mode to give back (group 4, mode 0640).
        var pids: [String: Int32] = [:]
        var uids: [String: UInt32] = [:]
        for name in ["left", "right"] {
            let disk = disks + "/\(name).qcow2"
            let made = try await ProcessLauncher.run("qemu-img", ["create", "-q", "-f", "qcow2", disk, "32M"])
            try #require(made.status == .exited(0), "\(made.output)")
            chown(disk, 0, 4)
            chmod(disk, 0o640)
            let profile = try Guest.writeProfile(in: root, name: name, extra: """
                disks: [ { id: data, file: \(disk) } ]
                hotplug: { slots: 2 }

                """)
            let up = try await daemon.run("up", profile)
            try #require(up.status == .exited(0), "\(up)")
            let status = try await daemon.json(VMStatus.self, "status", name)
            pids[name] = try #require(status.pid as Int32?)
            uids[name] = try #require(status.uid, "status shows the VM's uid")
            #expect(status.confinement?.contains("no capabilities") == true, "\(String(describing: status.confinement))")
            if DeviceCGroup(root: "") != nil {
                #expect(status.confinement?.contains("device cgroup allowing 5 nodes") == true,
                        "\(String(describing: status.confinement))")
            }
            _ = try await HeartbeatWait.first(in: status.serialLog) { $0.n >= 1 && $0.disks == ["vda"] }
        }

        // What the kernel says about each QEMU.
        for name in ["left", "right"] {
            let fields = Self.procStatus(pids[name]!)
            let uid = uids[name]!
            #expect(fields["Uid"] == Array(repeating: "\(uid)", count: 4).joined(separator: "\t"), "\(name): \(fields["Uid"] ?? "")")
            #expect(fields["Gid"] == Array(repeating: "\(uid)", count: 4).joined(separator: "\t"), "\(name)")
            #expect(fields["Groups"] == "", "\(name): no supplementary groups")
            #expect(fields["CapEff"] == "0000000000000000" && fields["CapPrm"] == "0000000000000000", "\(name)")
            #expect(fields["NoNewPrivs"] == "1", "\(name)")
            #expect(fields["Seccomp"] == "2", "\(name): QEMU's own seccomp sandbox is still on")
            // Its own device cgroup (cgroup v1 here), joined before exec: only the harmless nodes.
            if let devices = DeviceCGroup(root: "") {
                let cgroup = (try? String(contentsOfFile: "/proc/\(pids[name]!)/cgroup", encoding: .utf8)) ?? ""
                #expect(cgroup.contains(":devices:/corral/\(name)\n"), "\(name): \(cgroup)")
                #expect(try devices.rules(vm: name) == DeviceRules.allowed(accel: .tcg).map(\.line), "\(name)")
            }
            // Its own mount namespace, in which the daemon's state and /tmp (where these disks are) are empty.
            let ownNS = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pids[name]!)/ns/mnt")
            let daemonNS = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")
            #expect(ownNS != daemonNS, "\(name): a mount namespace of its own")
            let mounts = (try? String(contentsOfFile: "/proc/\(pids[name]!)/mountinfo", encoding: .utf8)) ?? ""
            for hidden in [daemon.state, "/tmp"] {
                #expect(mounts.split(separator: "\n").contains { $0.contains(" \(hidden) ") && $0.contains("corral-hidden") },
                        "\(name): \(hidden) is hidden")
            }
        }
        #expect(uids["left"] != uids["right"], "two VMs, two uids")
        let host = try await daemon.json(HostReport.self, "host")
        #expect(host.qemuUsers == "2000000-2065535" && host.qemuUsersInUse == 2, "\(String(describing: host.qemuUsers))")

        // The disk is the VM's while it runs; the left VM's uid reaches its own disk and nothing of the right VM.
        let leftUID = uids["left"]!, rightUID = uids["right"]!
        let rightState = daemon.state + "/vms/right"
        #expect(Self.ownerAndMode(disks + "/right.qcow2").map { $0.0 == rightUID && $0.2 == 0o600 } == true)
        let own = try await Self.asUID(leftUID, Self.attempt("open", disks + "/left.qcow2"), root: root)
        #expect(own.1.trimmingCharacters(in: .whitespacesAndNewlines) == "OK", "its own disk: \(own)")
        for (action, path) in [("open", disks + "/right.qcow2"), ("open", rightState + "/vm.json"),
                               ("open", rightState + "/serial.log"), ("connect", rightState + "/qmp.sock")] {
            let result = try await Self.asUID(leftUID, Self.attempt(action, path), root: root)
            #expect(result.1.trimmingCharacters(in: .whitespacesAndNewlines) == "EACCES", "\(action) \(path): \(result)")
        }

        // Another VM cannot start with a disk the left one holds; nothing of it is left.
        let thief = try Guest.writeProfile(in: root, name: "thief", extra: "disks: [ { id: data, file: \(disks)/left.qcow2 } ]\n")
        let refused = try await daemon.run("up", thief)
        #expect(refused.status != .exited(0) && refused.output.contains("is in use by VM left"), "\(refused)")
        #expect(Self.ownerAndMode(disks + "/left.qcow2").map { $0.0 == leftUID } == true, "still the left VM's")

        // A hotplugged disk is given to the VM while attached and given back when it is removed.
        let extra = disks + "/extra.qcow2"
        _ = try await ProcessLauncher.run("qemu-img", ["create", "-q", "-f", "qcow2", extra, "16M"])
        chmod(extra, 0o644)
        let add = try await daemon.run("disk", "add", "left", "--id", "extra", "--file", extra)
        #expect(add.status == .exited(0), "\(add)")
        let leftLog = try await daemon.json(VMStatus.self, "status", "left").serialLog
        _ = try await HeartbeatWait.first(in: leftLog) { $0.disks == ["vda", "vdb"] }
        #expect(Self.ownerAndMode(extra).map { $0.0 == leftUID && $0.2 == 0o600 } == true)
        // The right VM cannot take a disk the left one holds.
        let steal = try await daemon.run("disk", "add", "right", "--id", "stolen", "--file", extra)
        #expect(steal.status != .exited(0) && steal.output.contains("in use by VM left"), "\(steal)")
        let remove = try await daemon.run("disk", "rm", "left", "extra")
        #expect(remove.status == .exited(0), "\(remove)")
        _ = try await HeartbeatWait.first(in: leftLog) { $0.disks == ["vda"] }
        #expect(Self.ownerAndMode(extra).map { $0 == (0, 0, 0o644) } == true, "given back: \(String(describing: Self.ownerAndMode(extra)))")

        // Stop one, remove the other: both disks have their owner and mode back.
        _ = try await daemon.run("stop", "left")
        _ = try await daemon.run("rm", "--force", "right")
        for name in ["left", "right"] {
            let mode = Self.ownerAndMode(disks + "/\(name).qcow2")
            #expect(mode.map { $0 == (0, 4, 0o640) } == true, "\(name): \(String(describing: mode))")
        }
        _ = try await daemon.run("rm", "left")
        if let devices = DeviceCGroup(root: "") {
            for name in ["left", "right"] {
                #expect(!FileManager.default.fileExists(atPath: devices.path(vm: name)), "\(name): device cgroup removed")
            }
        }
        #expect(await daemon.terminate() == .exited(0))
    }

    @Test func qemuUserRootIsAnExplicitLoudOptOut() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("isr")
        defer { DaemonCLITests.cleanUp(root) }
        let daemon = try await Daemon.start(root: root, extra: ["--qemu-user", "root"])
        let up = try await daemon.run("up", try Guest.writeProfile(in: root, name: "plain"))
        try #require(up.status == .exited(0), "\(up)")
        let status = try await daemon.json(VMStatus.self, "status", "plain")
        #expect(status.uid == nil && status.confinement?.hasPrefix("none") == true)
        #expect(Self.procStatus(try #require(status.pid))["Uid"]?.hasPrefix("0\t") == true)
        let log = (try? String(contentsOfFile: daemon.log, encoding: .utf8)) ?? ""
        #expect(log.contains("--qemu-user root: every QEMU runs as root"), "logged loudly")
        let bad = try await ProcessLauncher.run(DaemonCLITests.binary, ["daemon", "--qemu-user", "nobody", "--state-dir", root + "/x"])
        #expect(bad.status == .exited(64) || bad.output.contains("--qemu-user must be 'vm' or 'root'"), "\(bad.output)")
        _ = try await daemon.run("kill", "plain")
        #expect(await daemon.terminate() == .exited(0))
    }
}
