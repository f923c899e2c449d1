import CorralModel
import DiskConversion
import Foundation
import GuestAgent
import JSON
import Profiles
import QEMUCommand
import CorralControl
import Supervisor
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `corral convert` end to end: foreign images made by the real qemu-img, converted by the real `corral` binary
/// (and an OVA-style tar member through `DiskConverter`), then attached to the test guest (TCG), which reads them
/// back: every disk must be there with the original size and exactly the original bytes.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(10))) struct ConvertTests {
    static let diskSize = 32 << 20

    /// A raw disk of `diskSize` bytes: `CCTAG-<tag>` at byte 0 (tells the disks apart in the guest), a marker at
    /// 1 MiB, a byte pattern at an odd offset, and another in the last 4 KiB; the rest zero (sparse).
    static func writeRawDisk(_ path: String, tag: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXFailure("open \(path)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(diskSize)) == 0 else { throw POSIXFailure("truncate \(path)") }
        let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let pieces: [(Int, [UInt8])] = [
            (0, Array("CCTAG-\(tag)".utf8)),
            (1 << 20, Array(marker.utf8)),
            (5 << 20 + 123, pattern),
            (diskSize - 4096, pattern.reversed()),
        ]
        for (offset, bytes) in pieces {
            guard bytes.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }) == bytes.count else {
                throw POSIXFailure("write \(path)")
            }
        }
    }

    static let marker = "CORRAL-CONVERT-MARKER the quick brown fox"

    static func sha1(_ path: String) async throws -> String {
        let result = try await ProcessLauncher.run("/usr/bin/sha1sum", [path])
        return String(result.output.prefix(40))
    }

    @discardableResult
    static func qemuImg(_ arguments: String...) async throws -> String {
        let result = try await ProcessLauncher.run("qemu-img", arguments)
        try #require(result.status == .exited(0), "qemu-img \(arguments.joined(separator: " ")): \(result.output)")
        return result.output
    }

    static func corral(_ arguments: String...) async throws -> (status: Supervisor.ExitStatus, output: String) {
        try await corral(arguments)
    }

    static func corral(_ arguments: [String]) async throws -> (status: Supervisor.ExitStatus, output: String) {
        let result = try await ProcessLauncher.run(DaemonCLITests.binary, ["convert"] + arguments)
        return (result.status, result.output)
    }

    static func listing(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    /// The data offset and size of `member` in a ustar archive (what `corral import ova` will read from its index).
    static func tarMember(_ archive: String, named member: String) throws -> (offset: UInt64, size: UInt64) {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: archive)))
        var header = 0
        while header + 512 <= bytes.count {
            let block = bytes[header..<header + 512]
            if block.allSatisfy({ $0 == 0 }) { break }
            let name = String(decoding: block.prefix(100).prefix { $0 != 0 }, as: UTF8.self)
            let sizeField = String(decoding: block.dropFirst(124).prefix(12).prefix { $0 != 0 && $0 != 32 }, as: UTF8.self)
            let size = try #require(UInt64(sizeField, radix: 8), "size of \(name): '\(sizeField)'")
            if name == member { return (UInt64(header + 512), size) }
            header += 512 + Int((size + 511) / 512 * 512)
        }
        throw POSIXFailure("\(member) not in \(archive)")
    }

    // MARK: Converted disks, read by the guest

    @Test func foreignDisksConvertAndTheGuestReadsThemIntact() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("conv")
        defer { Guest.cleanUp(root) }

        // Foreign inputs, each from its own raw original (distinct tag), made by qemu-img as the other hypervisors'
        // tools would. VHD with force_size so its size is exactly the original's (no CHS rounding).
        struct Case { var tag: String; var input: String; var output: String; var extra: [String] = [] }
        let cases = [
            Case(tag: "vmdk", input: "web.vmdk", output: "web.qcow2"),
            Case(tag: "vdi", input: "box.vdi", output: "box.qcow2", extra: ["--json"]),
            Case(tag: "vhdx", input: "hyperv.vhdx", output: "hyperv.qcow2"),
            Case(tag: "vpc", input: "azure.vhd", output: "azure.qcow2"),
            Case(tag: "raw", input: "esx.vmdk", output: "esx.raw"),
        ]
        var originals: [String: String] = [:]
        for item in cases {
            let raw = root + "/\(item.tag).orig"
            try Self.writeRawDisk(raw, tag: item.tag)
            originals[item.tag] = try await Self.sha1(raw)
            let format = item.tag == "raw" ? "vmdk" : item.tag
            let options = format == "vpc" ? ["-o", "force_size=on"] : []
            _ = try await ProcessLauncher.run("qemu-img", ["convert", "-f", "raw", "-O", format] + options
                + [raw, root + "/" + item.input])
            try #require(FileManager.default.fileExists(atPath: root + "/" + item.input))
        }

        // The real binary converts each; the output is in a pipe, so progress comes as plain lines.
        for item in cases {
            let (status, output) = try await Self.corral([root + "/" + item.input, root + "/" + item.output] + item.extra)
            #expect(status == .exited(0), "\(item.input): \(output)")
            if item.extra.contains("--json") {
                let lines = output.split(separator: "\n").map(String.init)
                let last = try #require(lines.last.flatMap { try? JSONValue(parsing: $0) }, "\(output)")
                #expect(last["result"]?["inputFormat"] == "vdi" && last["result"]?["outputFormat"] == "qcow2", "\(output)")
                #expect(last["result"]?["virtualSize"]?.intValue == Int64(Self.diskSize))
                #expect(last["result"]?["check"]?["clean"] == true)
                #expect(lines.dropLast().allSatisfy { $0.hasPrefix(#"{"progress":{"percent":"#) }, "\(output)")
            } else {
                let format = item.output.hasSuffix(".raw") ? "raw" : "qcow2"
                #expect(output.contains("→ \(root)/\(item.output) (\(format)): 32.0 MiB disk"), "\(output)")
                #expect(output.contains("qemu-img check clean") == (format == "qcow2"), "\(output)")
            }
        }
        let info = try JSONValue(parsing: try await Self.qemuImg("info", "--output=json", root + "/esx.raw"))
        #expect(info["format"] == "raw")
        #expect(!Self.listing(root).contains { $0.contains("corral-convert") }, "no temporary file left: \(Self.listing(root))")

        // A VMDK inside a tar archive (an OVA), read in place through the API `corral import ova` uses.
        try Self.writeRawDisk(root + "/ova.orig", tag: "ova")
        originals["ova"] = try await Self.sha1(root + "/ova.orig")
        try await Self.qemuImg("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
                               root + "/ova.orig", root + "/disk1.vmdk")
        try "<?xml version=\"1.0\"?><Envelope/>".write(toFile: root + "/appliance.ovf", atomically: true, encoding: .utf8)
        let tar = try await ProcessLauncher.run("/usr/bin/env", ["-C", root, "tar", "--format=ustar", "-cf", "appliance.ova",
                                                                 "appliance.ovf", "disk1.vmdk"])
        try #require(tar.status == .exited(0), "\(tar.output)")
        FileOps.remove(root + "/disk1.vmdk")
        let member = try Self.tarMember(root + "/appliance.ova", named: "disk1.vmdk")
        #expect(member.offset > 512, "the disk is the second member")
        let percents = Percents()
        let result = try await DiskConverter().convert(
            source: .archiveMember(archive: root + "/appliance.ova", offset: member.offset, size: member.size, format: .vmdk),
            to: root + "/ova.qcow2", format: .qcow2, progress: { percents.append($0) })
        #expect(result.virtualSize == UInt64(Self.diskSize) && result.check?.isClean == true)
        #expect(percents.values.last == 100, "progress reported: \(percents.values)")

        // One guest, every converted disk attached read-only; the agent runs the reading inside the guest.
        var disks = cases.enumerated().map { index, item in
            Disk(id: "d\(index)", file: root + "/" + item.output, format: item.output.hasSuffix(".raw") ? .raw : .qcow2,
                 cache: .writeback, readonly: true)
        }
        disks.append(Disk(id: "dova", file: root + "/ova.qcow2", format: .qcow2, cache: .writeback, readonly: true))
        var profile = Guest.profile(name: "convert-read", disks: disks)
        profile.agent = true
        let paths = VMPaths(folder: root + "/vm")
        let vm = try await VMLauncher().start(StartRequest(config: LiveConfig(profile: profile), accel: .tcg, paths: paths))
        defer { if vm.process.exitStatus == nil { vm.process.signal(SIGKILL) } }
        let seen = try await Self.guestDisks(agent: GuestAgentClient(socketPath: paths.agentSocket, timeout: .seconds(10)))

        // Tag → (sectors, marker, sha1) as the guest read them.
        #expect(seen.count == disks.count, "the guest sees every disk: \(seen)")
        for (tag, sum) in originals {
            let disk = try #require(seen[tag], "no disk tagged \(tag) in the guest: \(seen)")
            #expect(disk.bytes == UInt64(Self.diskSize), "\(tag): size in the guest")
            #expect(disk.marker == Self.marker, "\(tag): marker at 1 MiB")
            #expect(disk.sha1 == sum, "\(tag): every byte as in the original")
        }
        _ = await VMShutdown.stop(vm, timeout: .seconds(30))
        await vm.qmp.close()
    }

    struct GuestDisk: CustomStringConvertible {
        var name: String
        var bytes: UInt64
        var marker: String
        var sha1: String
        var description: String { "\(name) \(bytes) '\(marker)' \(sha1)" }
    }

    /// Runs a script in the guest through qemu-ga's `guest-exec`: for each virtio disk its tag, size, the text at
    /// 1 MiB and the SHA-1 of the whole device.
    static func guestDisks(agent: GuestAgentClient) async throws -> [String: GuestDisk] {
        let deadline = ContinuousClock.now.advanced(by: .seconds(240))
        while (try? await agent.call("guest-ping")) == nil {
            try #require(ContinuousClock.now < deadline, "qemu-ga never answered")
            try await Task.sleep(for: .milliseconds(500))
        }
        let script = """
            for d in /sys/block/vd*; do n=${d##*/}; \
            tag=$(dd if=/dev/$n bs=64 count=1 2>/dev/null | tr -d '\\000'); \
            mark=$(dd if=/dev/$n bs=1048576 skip=1 count=1 2>/dev/null | head -c \(marker.utf8.count)); \
            sum=$(sha1sum < /dev/$n | cut -c1-40); \
            echo "$n|$(cat $d/size)|$tag|$mark|$sum"; done
            """
        let started = try await agent.call("guest-exec", arguments: [
            "path": "/bin/sh", "arg": ["-c", .string(script)], "capture-output": true,
        ])
        let pid = try #require(started["pid"]?.intValue, "guest-exec: \(started)")
        while true {
            let status = try await agent.call("guest-exec-status", arguments: ["pid": .int(pid)])
            if status["exited"]?.boolValue == true {
                #expect(status["exitcode"]?.intValue == 0, "\(status)")
                let encoded = status["out-data"]?.stringValue ?? ""
                let text = String(decoding: Data(base64Encoded: encoded) ?? Data(), as: UTF8.self)
                var disks: [String: GuestDisk] = [:]
                for line in text.split(separator: "\n") {
                    let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                    guard fields.count == 5, let sectors = UInt64(fields[1]) else { continue }
                    let tag = fields[2].hasPrefix("CCTAG-") ? String(fields[2].dropFirst(6)) : fields[2]
                    disks[tag] = GuestDisk(name: fields[0], bytes: sectors * 512, marker: fields[3], sha1: fields[4])
                }
                return disks
            }
            try #require(ContinuousClock.now < deadline, "the guest's reading did not finish")
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    // MARK: Refusals and interruptions leave nothing behind

    @Test func refusalsNameTheFileAndLeaveNothing() async throws {
        let root = Guest.tempFolder("convno")
        defer { Guest.cleanUp(root) }
        try Self.writeRawDisk(root + "/plain.raw", tag: "plain")
        _ = FileManager.default.createFile(atPath: root + "/fake.vmdk", contents: Data(repeating: 7, count: 4096))
        let before = Self.listing(root)

        // Not a VMDK: qemu-img's own reason, exit 1.
        var run = try await Self.corral(root + "/fake.vmdk", root + "/out.qcow2")
        #expect(run.status == .exited(1))
        #expect(run.output.contains("error: \(root)/fake.vmdk: qemu-img cannot open it as vmdk: invalid VMDK image descriptor"),
                "\(run.output)")
        // A raw disk given as vdi.
        run = try await Self.corral(root + "/plain.raw", root + "/out.qcow2", "--from", "vdi")
        #expect(run.status == .exited(1) && run.output.contains("qemu-img cannot open it as vdi: Image not in VDI format"),
                "\(run.output)")
        // Missing input.
        run = try await Self.corral(root + "/nothing.vdi", root + "/out.qcow2")
        #expect(run.status == .exited(1) && run.output.contains("error: \(root)/nothing.vdi: no such file"), "\(run.output)")
        // An extension that names no format: corral itself refuses, listing the formats.
        run = try await Self.corral(root + "/plain.bin", root + "/out.qcow2")
        #expect(run.status == .exited(64) && run.output.contains("give --from with one of: vmdk, vdi, vhdx, vpc (.vhd)"),
                "\(run.output)")
        // IN == OUT, even with --force.
        run = try await Self.corral(root + "/plain.raw", root + "/plain.raw", "--force", "--from", "raw", "--to", "raw")
        #expect(run.status == .exited(2) && run.output.contains("the input and the output are the same file"), "\(run.output)")
        // A backing file is never followed.
        try await Self.qemuImg("create", "-q", "-f", "qcow2", "-b", root + "/plain.raw", "-F", "raw", root + "/overlay.qcow2")
        run = try await Self.corral(root + "/overlay.qcow2", root + "/out.raw")
        #expect(run.status == .exited(1)
            && run.output.contains("overlay.qcow2: not converted: it is an overlay on a backing file (\(root)/plain.raw)"),
            "\(run.output)")
        FileOps.remove(root + "/overlay.qcow2")
        // Nor is a VMware descriptor whose extent is some other file of the host.
        try """
            # Disk DescriptorFile
            version=1
            CID=12345678
            parentCID=ffffffff
            createType="monolithicFlat"

            RW 2048 FLAT "/etc/passwd" 0

            ddb.adapterType = "ide"

            """.write(toFile: root + "/lure.vmdk", atomically: true, encoding: .utf8)
        run = try await Self.corral(root + "/lure.vmdk", root + "/out.qcow2")
        #expect(run.status == .exited(1) && run.output.contains(
            "lure.vmdk: not converted: its descriptor names an extent outside its folder (/etc/passwd)"), "\(run.output)")
        FileOps.remove(root + "/lure.vmdk")
        #expect(Self.listing(root) == before, "nothing written: \(Self.listing(root))")

        // An existing OUT is refused without --force and kept as it was; with --force it is replaced.
        _ = FileManager.default.createFile(atPath: root + "/out.qcow2", contents: Data("keep me".utf8))
        run = try await Self.corral(root + "/plain.raw", root + "/out.qcow2")
        #expect(run.status == .exited(2) && run.output.contains("out.qcow2: already exists; give --force to replace it"),
                "\(run.output)")
        #expect(try String(contentsOfFile: root + "/out.qcow2", encoding: .utf8) == "keep me")
        run = try await Self.corral(root + "/plain.raw", root + "/out.qcow2", "--force", "--json")
        #expect(run.status == .exited(0), "\(run.output)")
        let info = try JSONValue(parsing: try await Self.qemuImg("info", "--output=json", "-f", "qcow2", root + "/out.qcow2"))
        #expect(info["virtual-size"]?.intValue == Int64(Self.diskSize))

        // A member window past the archive's end.
        await #expect(throws: ConvertError.memberOutOfRange(archive: root + "/plain.raw", offset: 1024,
                                                            size: UInt64(Self.diskSize), archiveSize: UInt64(Self.diskSize))) {
            _ = try await DiskConverter().convert(
                source: .archiveMember(archive: root + "/plain.raw", offset: 1024, size: UInt64(Self.diskSize), format: .vmdk),
                to: root + "/member.qcow2", format: .qcow2)
        }
        #expect(!Self.listing(root).contains { $0.contains("corral-convert") || $0 == "member.qcow2" })
    }

    /// SIGINT (Ctrl-C) and SIGTERM in the middle of a conversion: qemu-img is stopped, the temporary file removed,
    /// OUT never appears, and the exit status says which signal.
    @Test(arguments: [SIGINT, SIGTERM])
    func aSignalStopsQemuImgAndLeavesNothing(signal number: Int32) async throws {
        let root = Guest.tempFolder("convint")
        defer { Guest.cleanUp(root) }
        // 1 GiB of non-zero data: seconds of work for qemu-img, so the signal lands mid-way.
        let input = root + "/big.img"
        let fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let chunk = [UInt8](repeating: 0xA5, count: 1 << 20)
        for _ in 0..<1024 { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        close(fd)
        let log = root + "/out.log"
        let handle = try ProcessLauncher.launch(LaunchSpec(
            executable: DaemonCLITests.binary, arguments: ["convert", input, root + "/big.qcow2"], outputFile: log))
        defer { if !handle.hasExited { handle.signal(SIGKILL) } }

        // Wait until qemu-img convert runs (and has its temporary file), then signal corral alone.
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        var converter: [Int32] = []
        while converter.isEmpty && ContinuousClock.now < deadline && !handle.hasExited {
            converter = try processesMentioning(root + "/.big.qcow2.corral-convert-")
            try await Task.sleep(for: .milliseconds(5))
        }
        try #require(!converter.isEmpty, "qemu-img convert never ran: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        // Frozen, qemu-img cannot finish before the signal lands, however fast the host (corral's SIGKILL after its
        // 2 s grace still ends it).
        for pid in converter { kill(pid, SIGSTOP) }
        #expect(Self.listing(root).contains { $0.hasPrefix(".big.qcow2.corral-convert-") }, "\(Self.listing(root))")
        handle.signal(number)
        let status = await handle.waitForExit(timeout: .seconds(30))
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status == .exited(128 + number), "\(output)")
        let reason = number == SIGINT ? "interrupted (Ctrl-C)" : "interrupted (signal \(number))"
        #expect(output.contains("error: \(root)/big.qcow2: not written: \(reason); nothing was left behind"), "\(output)")
        #expect(Self.listing(root) == ["big.img", "out.log"], "no temporary file, no output")
        for pid in converter { #expect(!ProcessHandle.isAlive(pid), "qemu-img \(pid) stopped") }
    }
}

/// Progress figures reported from the reader thread.
final class Percents: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Double] = []
    func append(_ value: Double) {
        lock.lock()
        recorded.append(value)
        lock.unlock()
    }
    var values: [Double] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }
}

struct POSIXFailure: Error, CustomStringConvertible {
    var description: String
    init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
}
