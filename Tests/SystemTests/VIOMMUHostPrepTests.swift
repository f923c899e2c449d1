import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// corral's host preparation against a real kernel: the test guest boots under TCG with an emulated Intel IOMMU
/// (`intel-iommu`, `intel_iommu=on`: real DMAR unit, real IOMMU groups) and an emulated NVMe controller that can make
/// SR-IOV VFs; `corral-hostprep` (the HostDevices module the daemon uses, built as its own binary and appended to
/// the guest's initramfs by scripts/hostprep-initrd) makes the VFs, binds one to vfio-pci and gives it back, against
/// the guest's own sysfs. The guest's kernel does the work the host's would: VF creation, driver_override,
/// drivers_probe, /dev/vfio/GROUP.
@Suite(.serialized, .bootsGuests) struct VIOMMUHostPrepTests {
    static var helper: String {
        if let bin = ProcessInfo.processInfo.environment["CORRAL_BIN"], !bin.isEmpty {
            return URL(fileURLWithPath: bin).deletingLastPathComponent().path + "/corral-hostprep"
        }
        return Guest.repoRoot + "/.build/debug/corral-hostprep"
    }

    @Test(.timeLimit(.minutes(4))) func aVFIsMadeBoundToVFIOAndGivenBackInsideAVIOMMUGuest() async throws {
        try Guest.requireBuilt()
        try #require(FileManager.default.isExecutableFile(atPath: Self.helper), "\(Self.helper) is not built (swift build)")
        let root = Guest.tempFolder("viommu")
        defer { Guest.cleanUp(root) }
        // The guest's initramfs, then the helper's (the kernel unpacks both; the second starts on a 512-byte boundary).
        let overlay = root + "/hostprep.cpio"
        let built = try await runToEnd(Guest.repoRoot + "/scripts/hostprep-initrd", [Self.helper, overlay])
        try #require(built.status == 0, "hostprep-initrd: \(built.output)")
        var initrd = try Data(contentsOf: URL(fileURLWithPath: Guest.initrd))
        initrd.append(Data(count: (512 - initrd.count % 512) % 512))
        initrd.append(try Data(contentsOf: URL(fileURLWithPath: overlay)))
        try initrd.write(to: URL(fileURLWithPath: root + "/initrd.img"))

        let serial = root + "/serial.log"
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-system-x86_64")
        qemu.arguments = [
            "-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1", "-nodefaults", "-display", "none",
            "-no-reboot",
            "-device", "intel-iommu",
            "-kernel", Guest.kernel, "-initrd", root + "/initrd.img",
            "-append", "console=ttyS0 intel_iommu=on corral.hostprep panic=-1 quiet no_timer_check",
            "-device", "nvme-subsys,id=subsys0",
            "-device", "nvme,serial=corral0,subsys=subsys0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2",
            "-serial", "file:" + serial,
        ]
        qemu.standardOutput = FileHandle.nullDevice
        qemu.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try qemu.run()
        defer { if qemu.isRunning { kill(qemu.processIdentifier, SIGKILL) } }

        var lines: [String] = []
        for _ in 0..<900 {
            // Decoded leniently: a boot log may hold bytes that are not UTF-8.
            let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: serial))) ?? Data(), as: UTF8.self)
            lines = text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
                .filter { $0.hasPrefix("HOSTPREP ") }
            if lines.contains(where: { $0 == "HOSTPREP OK" || $0.hasPrefix("HOSTPREP ERROR") }) || !qemu.isRunning { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let tail = String(String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: serial))) ?? Data(), as: UTF8.self)
            .suffix(1500))
        let log = lines.isEmpty ? "no HOSTPREP line; the console ends with:\n" + tail : lines.joined(separator: "\n")
        #expect(lines.last == "HOSTPREP OK", "\(log)")
        // A real DMAR unit and real groups.
        #expect(lines.first?.hasPrefix("HOSTPREP iommu units=dmar0 groups=true") == true, "\(log)")
        // The NVMe PF on its driver, with room for 2 VFs and none made.
        let pf = try #require(lines.first { $0.hasPrefix("HOSTPREP pf ") })
        #expect(pf.contains("driver=nvme") && pf.contains("totalvfs=2") && pf.contains("numvfs=0"), "\(pf)")
        // corral made 2 VFs with autoprobe off: VF 0 exists, on no driver, in its own group, linked to its PF.
        let reserved = try #require(lines.first { $0.hasPrefix("HOSTPREP reserved ") })
        #expect(reserved.contains("vf=0") && reserved.contains("numvfs=2") && reserved.contains("autoprobe=0")
                && reserved.contains("vfdriver=none") && !reserved.contains("group=none"), "\(reserved)")
        // Bound: the kernel put it on vfio-pci through driver_override and made the group's node.
        let bound = try #require(lines.first { $0.hasPrefix("HOSTPREP bound ") })
        #expect(bound.contains("driver=vfio-pci") && bound.contains("override=vfio-pci") && bound.contains("node=char")
                && bound.contains("container=char"), "\(bound)")
        #expect(lines.contains { $0.hasPrefix("HOSTPREP refused ") && $0.contains("assigned to VM 'probe' already") },
                "\(log)")
        // Given back: unbound as it was (it never had a driver), the override cleared, the group node gone.
        let released = try #require(lines.first { $0.hasPrefix("HOSTPREP released ") })
        #expect(released == "HOSTPREP released driver=none override=none node=absent failures=0", "\(released)")
    }

    private func runToEnd(_ path: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
