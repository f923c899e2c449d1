import Foundation
import Supervisor
import Testing

/// `corral import libvirt` on XML that libvirt itself wrote, then `corral check` on the profile it wrote.
@Suite(.serialized) struct ImportCLITests {
    func corral(_ args: [String], in folder: String? = nil) async throws -> (Supervisor.ExitStatus, String) {
        let result = try await ProcessLauncher.run(CLITests.binary, args)
        return (result.status, result.output)
    }

    /// `virsh -c test:///default "define FILE; dumpxml NAME"`: libvirt's in-process test driver, no daemon.
    func virshDump(_ file: String, name: String) async throws -> String {
        let virsh = "/usr/bin/virsh"
        guard FileManager.default.isExecutableFile(atPath: virsh) else {
            throw CheckFailure("\(virsh) is missing: run scripts/install-deps (libvirt-clients)")
        }
        let result = try await ProcessLauncher.run(virsh, ["-q", "-c", "test:///default",
                                                           "define \(file); dumpxml \(name)"])
        guard result.status == .exited(0), let start = result.output.range(of: "<domain") else {
            throw CheckFailure("virsh failed: \(result.output)")
        }
        return String(result.output[start.lowerBound...])
    }

    struct CheckFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    @Test func importALibvirtDomainThenCheckTheProfile() async throws {
        let folder = Guest.tempFolder("import")
        defer { Guest.cleanUp(folder) }
        // The fixture's disk, moved into the test folder so that `corral check` finds the image.
        let image = folder + "/plain-virtio.qcow2"
        FileManager.default.createFile(atPath: image, contents: Data())
        let fixture = try String(contentsOfFile: Guest.repoRoot + "/Tests/ImportTests/Fixtures/plain-virtio.xml",
                                 encoding: .utf8)
            .replacingOccurrences(of: "/var/lib/libvirt/images/plain-virtio.qcow2", with: image)
        try fixture.write(toFile: folder + "/input.xml", atomically: true, encoding: .utf8)
        let dumped = try await virshDump(folder + "/input.xml", name: "plain-virtio")
        try dumped.write(toFile: folder + "/plain.xml", atomically: true, encoding: .utf8)

        let (status, output) = try await corral(["import", "libvirt", folder + "/plain.xml", "--out", folder])
        #expect(status == .exited(0), "\(output)")
        let profile = folder + "/plain-virtio.yaml"
        #expect(output.contains("wrote \(profile) (plain-virtio: 2/2 vCPUs, 2G RAM, 1 disks, 1 NICs)"), "\(output)")
        #expect(output.contains("  /domain/uuid: <uuid>"), "\(output)")
        #expect(output.contains("  /domain/devices/channel[1]: guest agent channel — agent: true"), "\(output)")

        let (checkStatus, checkOutput) = try await corral(["check", profile])
        #expect(checkStatus == .exited(0), "\(checkOutput)")
        #expect(checkOutput.contains("\(profile): ok (plain-virtio: 2/2 vCPUs, 2G RAM, 1 disks, 1 NICs)"))

        // Not again without --force; with it, JSON.
        let (again, againOutput) = try await corral(["import", "libvirt", folder + "/plain.xml", "--out", folder])
        #expect(again == .exited(2))
        #expect(againOutput.contains("\(profile) exists; remove it or use --force"), "\(againOutput)")
        let (forced, json) = try await corral(["import", "libvirt", folder + "/plain.xml", "--out", folder, "--force",
                                               "--json", "--compat"])
        #expect(forced == .exited(0), "\(json)")
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["profile"] as? String == profile)
        let notes = object?["notes"] as? [[String: Any]] ?? []
        #expect(notes.contains { $0["path"] as? String == "/domain/devices" && $0["what"] as? String == "compat" })
        let disks = object?["disks"] as? [[String: Any]] ?? []
        #expect(disks.first?["source"] as? String == image)
        #expect(disks.first?["needsConversion"] as? Bool == false)
        let (checkCompat, compatOutput) = try await corral(["check", profile])
        #expect(checkCompat == .exited(0), "\(compatOutput)")
        #expect(try String(contentsOfFile: profile, encoding: .utf8).contains("bus: nvme"))
    }

    /// `--convert`: a domain whose disk is a VMDK gets a qcow2 beside it with the same content, and the profile
    /// points at it; without the flag the output says which conversion is needed.
    @Test func convertTurnsAVMDKDiskIntoTheQcow2TheProfileNames() async throws {
        let folder = Guest.tempFolder("import-conv")
        defer { Guest.cleanUp(folder) }
        var bytes = [UInt8](repeating: 0, count: 8 << 20)
        bytes.replaceSubrange(0..<12, with: Array("from-libvirt".utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/old.raw"))
        let made = try await ProcessLauncher.run("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", folder + "/old.raw",
                                                              folder + "/old-desktop.vmdk"])
        try #require(made.status.isSuccess, "\(made.output)")
        try """
            <domain type='kvm'><name>old-desktop</name><memory unit='MiB'>512</memory><vcpu>1</vcpu>
            <os><type arch='x86_64' machine='q35'>hvm</type></os>
            <devices><disk type='file' device='disk'><driver name='qemu' type='vmdk'/>
            <source file='\(folder)/old-desktop.vmdk'/><target dev='vda' bus='virtio'/></disk></devices></domain>
            """.write(toFile: folder + "/input.xml", atomically: true, encoding: .utf8)
        let dumped = try await virshDump(folder + "/input.xml", name: "old-desktop")
        try dumped.write(toFile: folder + "/old.xml", atomically: true, encoding: .utf8)

        let (plain, hint) = try await corral(["import", "libvirt", folder + "/old.xml", "--out", folder])
        #expect(plain == .exited(0), "\(hint)")
        #expect(hint.contains("convert \(folder)/old-desktop.vmdk (vmdk) to \(folder)/old-desktop.qcow2 first"), "\(hint)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/old-desktop.qcow2"))

        let (status, output) = try await corral(["import", "libvirt", folder + "/old.xml", "--out", folder, "--convert",
                                                 "--force"])
        #expect(status == .exited(0), "\(output)")
        #expect(!output.contains("old-desktop.qcow2 first") && output.contains("qemu-img check clean"), "\(output)")
        let compare = try await ProcessLauncher.run("qemu-img", ["compare", "-f", "raw", "-F", "qcow2",
                                                                 folder + "/old.raw", folder + "/old-desktop.qcow2"])
        #expect(compare.status.isSuccess, "the qcow2 holds the VMDK's content: \(compare.output)")
        let profile = try String(contentsOfFile: folder + "/old-desktop.yaml", encoding: .utf8)
        #expect(profile.contains("old-desktop.qcow2") && profile.contains("format: qcow2"), "\(profile)")
        let (checkStatus, checkOutput) = try await corral(["check", folder + "/old-desktop.yaml"])
        #expect(checkStatus == .exited(0), "\(checkOutput)")
    }

    @Test func badXMLExitsTwoNamingFileLineAndColumn() async throws {
        let folder = Guest.tempFolder("import-bad")
        defer { Guest.cleanUp(folder) }
        let path = folder + "/bad.xml"
        try "<domain type='kvm'>\n  <name>x</name>\n  <memory unit='parsecs'>1</memory>\n</domain>\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let (status, output) = try await corral(["import", "libvirt", path, "--out", folder])
        #expect(status == .exited(2))
        #expect(output.contains("\(path):3:11: /domain/memory/@unit: unit 'parsecs' is not one of"), "\(output)")
        try "<domain>\n<!DOCTYPE x>\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (doctype, doctypeOutput) = try await corral(["import", "libvirt", path])
        #expect(doctype == .exited(2))
        #expect(doctypeOutput.contains("\(path):2:1: document type declarations (<!DOCTYPE) are refused"),
                "\(doctypeOutput)")
        let (missing, missingOutput) = try await corral(["import", "libvirt", folder + "/nope.xml"])
        #expect(missing == .exited(2))
        #expect(missingOutput.contains("\(folder)/nope.xml: cannot open: No such file or directory"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/x.yaml"))
    }
}
