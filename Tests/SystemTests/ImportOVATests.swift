import CorralModel
import Foundation
import GuestAgent
import Supervisor
import Testing
import TestSupport

/// `corral import ova` end to end: an OVA the test builds (a VMware-style OVF and a streamOptimized VMDK made by
/// qemu-img from a disk with known bytes, packed with tar) becomes a profile and a qcow2 disk, converted straight out
/// of the package; the test guest boots with it (through a profile that `extends` the imported one for its kernel) and
/// reads the bytes back through qemu-ga.
@Suite(.serialized, .bootsGuests) struct ImportOVATests {
    static func ovf(capacity: Int) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" \
        xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" \
        xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
          <References><File ovf:href="appliance-disk1.vmdk" ovf:id="file1"/></References>
          <DiskSection>
            <Info>Virtual disk information</Info>
            <Disk ovf:capacity="\(capacity)" ovf:diskId="vmdisk1" ovf:fileRef="file1" \
        ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
          </DiskSection>
          <VirtualSystem ovf:id="appliance">
            <Info>A virtual machine</Info>
            <Name>Appliance One</Name>
            <VirtualHardwareSection>
              <Info>Virtual hardware requirements</Info>
              <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>\
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
              <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:InstanceID>2</rasd:InstanceID>\
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>256</rasd:VirtualQuantity></Item>
              <Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID>\
        <rasd:ResourceType>17</rasd:ResourceType></Item>
              <Item><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceSubType>E1000</rasd:ResourceSubType>\
        <rasd:ResourceType>10</rasd:ResourceType></Item>
              <Item><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceType>23</rasd:ResourceType></Item>
            </VirtualHardwareSection>
          </VirtualSystem>
        </Envelope>
        """
    }

    @Test(.timeLimit(.minutes(5))) func anOVAImportsConvertsInPlaceAndBoots() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("ova")
        defer { Guest.cleanUp(root) }
        // The appliance's disk: 16 MiB with a marker at its start, as a streamOptimized VMDK in a tar.
        let raw = root + "/disk.raw"
        var bytes = [UInt8](repeating: 0, count: 16 << 20)
        bytes.replaceSubrange(0..<8, with: Array("OVA-disk".utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        let vmdk = try await ProcessLauncher.run("qemu-img", ["convert", "-f", "raw", "-O", "vmdk", "-o",
                                                              "subformat=streamOptimized", raw,
                                                              root + "/appliance-disk1.vmdk"])
        try #require(vmdk.status.isSuccess, "\(vmdk.output)")
        try Self.ovf(capacity: 16 << 20).write(toFile: root + "/appliance.ovf", atomically: true, encoding: .utf8)
        let tar = try await ProcessLauncher.run("tar", ["-C", root, "-cf", root + "/appliance.ova", "appliance.ovf",
                                                        "appliance-disk1.vmdk"])
        try #require(tar.status.isSuccess, "\(tar.output)")
        for file in ["disk.raw", "appliance-disk1.vmdk", "appliance.ovf"] { try FileManager.default.removeItem(atPath: root + "/" + file) }

        let out = root + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let imported = try await ProcessLauncher.run(CLITests.binary, ["import", "ova", root + "/appliance.ova",
                                                                       "--out", out, "--name", "appliance"])
        try #require(imported.status == .exited(0), "\(imported.output)")
        #expect(imported.output.contains("wrote \(out)/appliance.yaml"), "\(imported.output)")
        #expect(imported.output.contains("ResourceType 23") || imported.output.lowercased().contains("usb"),
                "the USB controller is reported: \(imported.output)")
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(files == ["appliance-disk1.qcow2", "appliance.yaml"], "nothing but the profile and its disk: \(files)")
        let info = try await ProcessLauncher.run("qemu-img", ["info", "--output=json", out + "/appliance-disk1.qcow2"])
        #expect(info.output.contains(#""format": "qcow2""#) && info.output.contains(#""virtual-size": 16777216"#),
                "\(info.output)")
        // Importing again is refused without --force, and changes nothing.
        let again = try await ProcessLauncher.run(CLITests.binary, ["import", "ova", root + "/appliance.ova",
                                                                    "--out", out, "--name", "appliance"])
        #expect(again.status == .exited(2) && again.output.contains("exists"), "\(again.output)")

        // The test guest's kernel on top of the imported profile: its disk must come up with the appliance's bytes.
        let profile = try Guest.writeProfile(in: out, name: "appliance-run", extra: """
            extends: appliance.yaml
            agent: true
            hotplug: { slots: 0 }

            """)
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        let up = try await manager.up(UpRequest(profile: profile))
        #expect(up.disks.map(\.file) == [out + "/appliance-disk1.qcow2"])
        _ = try await HeartbeatWait.first(in: up.serialLog) { $0.disks == ["vda"] }
        let agent = try await SnapshotTests.agent(root + "/state/vms/appliance-run/agent.sock")
        #expect(try await SnapshotTests.read(agent) == "OVA-disk", "the guest reads the appliance's bytes")
        _ = try await manager.kill("appliance-run")
    }
}
