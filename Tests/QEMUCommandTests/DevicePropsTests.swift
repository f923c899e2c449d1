import Foundation
import CorralModel
import JSON
import Profiles
import QEMUCommand
import Testing

/// Reads our own JSONObject through text + Foundation, so expectations compare decoded values.
func decoded(_ object: JSONObject) -> [String: TestJSON] {
    parseObject(JSONValue.object(object).compactText)
}

@Suite("device properties")
struct DevicePropsTests {
    @Test("blockdev: file node then format node, linked by node-name")
    func diskNodes() {
        let disk = Disk(id: "root", file: "/img/root.qcow2", format: .qcow2)
        let nodes = DeviceProps.diskNodes(disk).map(decoded)
        #expect(nodes.count == 2)
        #expect(nodes[0] == [
            "driver": "file", "node-name": "file-root", "filename": "/img/root.qcow2", "aio": "threads",
            "cache": .object(["direct": true, "no-flush": false]), "discard": "ignore", "read-only": false,
        ])
        #expect(nodes[1] == [
            "driver": "qcow2", "node-name": "fmt-root", "file": "file-root",
            "cache": .object(["direct": true, "no-flush": false]), "discard": "ignore", "read-only": false,
        ])
        // Keys keep a readable order in the text (golden files read this way).
        #expect(JSONValue.object(DeviceProps.diskNodes(disk)[0]).compactText.hasPrefix(
            #"{"driver":"file","node-name":"file-root","filename":"/img/root.qcow2""#))
    }

    @Test("node names stay within QEMU's 31 bytes, distinct and stable, for ids up to 32 characters")
    func longIDs() {
        let a = Disk(id: "a-very-long-disk-identifier-0001", file: "/img/a")
        let b = Disk(id: "a-very-long-disk-identifier-0002", file: "/img/b")
        #expect(a.id.count == 32)
        let names = [a, b].flatMap { [DeviceProps.fileNodeName($0), DeviceProps.formatNodeName($0)] }
        #expect(names.allSatisfy { $0.utf8.count <= 31 }, "\(names)")
        #expect(Set(names).count == 4)
        #expect(names[0].hasPrefix("file-a-very-long") && names[1].hasPrefix("fmt-a-very-long"))
        #expect(DeviceProps.fileNodeName(a) == DeviceProps.fileNodeName(Disk(id: a.id, file: "/elsewhere")))
        // The format node refers to the (shortened) file node, and the device to the format node.
        let nodes = DeviceProps.diskNodes(a).map(decoded)
        #expect(nodes[1]["file"] == .string(names[0]))
        #expect(DeviceProps.diskDevice(a, bus: nil).map(decoded)[0]["drive"] == .string(names[1]))
        // Short ids are used as they are.
        #expect(DeviceProps.fileNodeName(Disk(id: "root", file: "/r")) == "file-root")
    }

    @Test("raw, read-only, discard")
    func rawReadonlyDiscard() {
        let disk = Disk(id: "iso", file: "/img/x.raw", format: .raw, readonly: true, discard: true)
        let nodes = DeviceProps.diskNodes(disk).map(decoded)
        #expect(nodes[1]["driver"] == "raw")
        for node in nodes {
            #expect(node["read-only"] == true)
            #expect(node["discard"] == "unmap")
        }
    }

    @Test("cache modes map onto direct / no-flush / write-cache", arguments: [
        (CacheMode.none, true, false, "on"),
        (.writeback, false, false, "on"),
        (.writethrough, false, false, "off"),
        (.directsync, true, false, "off"),
        (.unsafe, false, true, "on"),
    ])
    func cacheModes(mode: CacheMode, direct: Bool, noFlush: Bool, writeCache: String) {
        for bus in DiskBus.allCases {
            let disk = Disk(id: "d", file: "/img/d.qcow2", bus: bus, cache: mode)
            for node in DeviceProps.diskNodes(disk).map(decoded) {
                #expect(node["cache"] == .object(["direct": .bool(direct), "no-flush": .bool(noFlush)]))
            }
            let device = DeviceProps.diskDevice(disk, bus: nil).map(decoded).last
            #expect(device?["write-cache"] == .string(writeCache), "\(bus)")
        }
    }

    @Test("virtio-blk: one virtio-blk-pci on the given bus")
    func virtioBlk() {
        let disk = Disk(id: "root", file: "/img/root.qcow2", bus: .virtioBlk)
        let devices = DeviceProps.diskDevice(disk, bus: "hp2").map(decoded)
        #expect(devices == [[
            "driver": "virtio-blk-pci", "id": "disk-root", "bus": "hp2", "drive": "fmt-root", "serial": "root",
            "write-cache": "on",
        ]])
    }

    @Test("virtio-scsi: the disk's own controller, scsi-hd on its bus")
    func virtioSCSI() {
        let disk = Disk(id: "data", file: "/img/data.qcow2", bus: .virtioSCSI)
        let devices = DeviceProps.diskDevice(disk, bus: "pcie.0", addr: "05.0", bootIndex: 1).map(decoded)
        #expect(devices == [
            ["driver": "virtio-scsi-pci", "id": "scsi-data", "bus": "pcie.0", "addr": "05.0"],
            ["driver": "scsi-hd", "id": "disk-data", "bus": "scsi-data.0", "drive": "fmt-data", "serial": "data",
             "write-cache": "on", "bootindex": 1],
        ])
    }

    @Test("nvme: drive, serial and id")
    func nvme() {
        let disk = Disk(id: "fast", file: "/img/fast.qcow2", bus: .nvme)
        let devices = DeviceProps.diskDevice(disk, bus: nil).map(decoded)
        #expect(devices == [["driver": "nvme", "id": "disk-fast", "drive": "fmt-fast", "serial": "fast",
                             "write-cache": "on"]])
    }

    @Test("netdev per mode", arguments: [
        (NIC(id: "n", mode: .user), ["type": "user", "id": "net-n"] as [String: TestJSON]),
        (NIC(id: "n", mode: .tap, ifname: "tap-web0"),
         ["type": "tap", "id": "net-n", "ifname": "tap-web0", "script": "no", "downscript": "no"]),
    ])
    func netdevs(nic: NIC, expected: [String: TestJSON]) {
        #expect(decoded(DeviceProps.netdev(nic)) == expected)
    }

    @Test("NIC device: model, netdev, MAC from the profile or stable")
    func nicDevice() {
        let fixed = NIC(id: "lan", mac: "52:54:00:01:02:03", model: .e1000e)
        #expect(decoded(DeviceProps.nicDevice(fixed, vmName: "web", bus: "hp0")) == [
            "driver": "e1000e", "id": "nic-lan", "bus": "hp0", "netdev": "net-lan", "mac": "52:54:00:01:02:03",
        ])
        let derived = NIC(id: "lan", model: .virtioNet)
        let device = decoded(DeviceProps.nicDevice(derived, vmName: "web", bus: nil))
        #expect(device["driver"] == "virtio-net-pci")
        #expect(device["mac"] == .string(DeviceProps.stableMAC(vmName: "web", nicID: "lan")))
        #expect(device["bus"] == nil)
    }

    @Test("balloon only with memory.balloon; free-page-reporting follows the profile")
    func balloon() {
        var profile = Fixture.minimal()
        #expect(QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime()).devices(driver: "virtio-balloon-pci")
            .isEmpty)
        for reporting in [true, false] {
            profile.memory.balloon = Balloon(freePageReporting: reporting)
            let balloons = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
                .devices(driver: "virtio-balloon-pci")
            #expect(balloons == [["driver": "virtio-balloon-pci", "id": "balloon0", "bus": "pcie.0", "addr": "01.0",
                                  "free-page-reporting": .bool(reporting)]])
        }
    }

    @Test("root ports: one per hotplug slot, unique ids, addresses and chassis/slot pairs", arguments: [0, 1, 8, 9, 20])
    func rootPorts(count: Int) {
        var profile = Fixture.minimal()
        profile.hotplug.slots = count
        let ports = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime()).devices(driver: "pcie-root-port")
        #expect(ports.count == count)
        #expect(ports.compactMap { $0["id"] } == DeviceProps.hotplugPortIDs(count: count).map { .string($0) })
        #expect(Set(ports.compactMap { $0["addr"]?.stringValue }).count == count)
        let pairs = ports.map { "\($0["chassis"].map(String.init(describing:)) ?? "")/\($0["slot"].map(String.init(describing:)) ?? "")" }
        #expect(Set(pairs).count == count)
        #expect(ports.allSatisfy { $0["bus"] == "pcie.0" })
        // Function 0 of a shared slot is multifunction; lone ports are not.
        for port in ports {
            let addr = port["addr"]?.stringValue ?? ""
            let slot = addr.prefix(2)
            let sharers = ports.filter { $0["addr"]?.stringValue?.hasPrefix(slot) == true }.count
            let expectMulti = addr.hasSuffix(".0") && sharers > 1
            #expect((port["multifunction"] == true) == expectMulti, "\(addr)")
        }
    }

    @Test("hotplug port ids")
    func portIDs() {
        #expect(DeviceProps.hotplugPortIDs(count: 3) == ["hp0", "hp1", "hp2"])
        #expect(DeviceProps.hotplugPortIDs(count: 0).isEmpty)
        #expect(DeviceProps.hotplugPortIDs(count: -1).isEmpty)
    }

    @Test("hotplugged disk and NIC sit on the root port recorded for them (q35)")
    func hotpluggedOnPorts() {
        let args = QEMUArgv.build(LiveConfig(profile: Fixture.rich(), hotplugged: Fixture.richHotplugged()),
                                  Fixture.runtime())
        #expect(args.device(id: "scsi-extra")?["bus"] == "hp1")
        #expect(args.device(id: "scsi-extra")?["addr"] == nil)
        #expect(args.device(id: "disk-extra")?["bus"] == "scsi-extra.0")
        #expect(args.device(id: "disk-extra")?["write-cache"] == "off")
        #expect(args.device(id: "nic-late")?["bus"] == "hp3")
        // Their backends exist too.
        #expect(args.objects(of: "-blockdev").contains { $0["node-name"] == "fmt-extra" })
        #expect(args.objects(of: "-netdev").contains { $0["id"] == "net-late" })
        // A hotplugged disk never takes the boot disk's place.
        #expect(args.device(id: "disk-extra")?["bootindex"] == nil)
    }

    @Test("hotplug leaves the static layout alone: same root-bus addresses with or without runtime devices")
    func layoutStable() {
        let cold = QEMUArgv.build(LiveConfig(profile: Fixture.rich()), Fixture.runtime())
        let warm = QEMUArgv.build(LiveConfig(profile: Fixture.rich(), hotplugged: Fixture.richHotplugged()),
                                  Fixture.runtime())
        func rootBus(_ args: [String]) -> [String: TestJSON] {
            var map: [String: TestJSON] = [:]
            for device in args.objects(of: "-device") where device["bus"] == "pcie.0" {
                map[device["id"]?.stringValue ?? "?"] = device["addr"]
            }
            return map
        }
        #expect(rootBus(cold) == rootBus(warm))
        #expect(rootBus(cold).count == 9 + 3 + 2 + 1)
        #expect(Set(rootBus(cold).values.compactMap(\.stringValue)).count == rootBus(cold).count)
    }

    @Test("i440fx: no root ports; hotplugged devices go on pci.0 at the port's reserved slot")
    func i440fx() {
        let profile = Fixture.rich(machine: "pc", slots: 4)
        let layout = PCILayout(profile: profile)
        #expect(!layout.isPCIe && layout.rootBus == "pci.0")
        #expect(layout.ports.map(\.addr) == ["02.0", "03.0", "04.0", "05.0"])
        #expect(layout.disks.map(\.addr) == ["06.0", "07.0", "08.0"])

        let args = QEMUArgv.build(LiveConfig(profile: profile, hotplugged: Fixture.richHotplugged()), Fixture.runtime())
        #expect(args.devices(driver: "pcie-root-port").isEmpty)
        #expect(args.device(id: "scsi-extra")?["bus"] == "pci.0")
        #expect(args.device(id: "scsi-extra")?["addr"] == "03.0")
        #expect(args.device(id: "nic-late")?["addr"] == "05.0")
        #expect(args.device(id: "disk-root")?["bus"] == "pci.0")
        #expect(args.value(of: "-machine") == "pc")
    }

    @Test("layout reports a profile that needs more slots than the machine has")
    func tooManySlots() {
        var profile = Fixture.minimal()
        profile.nics = (0..<31).map { NIC(id: "n\($0)") }
        #expect(PCILayout(profile: profile).problems.count == 1)
        profile.nics = (0..<30).map { NIC(id: "n\($0)") }
        #expect(PCILayout(profile: profile).problems.isEmpty)
    }
}

extension TestJSON {
    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}
