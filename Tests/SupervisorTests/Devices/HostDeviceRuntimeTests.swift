import CorralModel
import Foundation
import JSON
import QEMUCommand
import Synchronization
import Testing
@testable import HostDevices
@testable import Supervisor

/// VFs chosen at start and host devices plugged at run time, over the fake kernel, a fake PF (VF settings kept per
/// VF, as the kernel keeps them) and scripted QEMUs.
@Suite(.serialized) struct HostDeviceRuntimeTests {
    /// The PF side of VF settings: what `ip link show PF` would list, changed only by `apply`.
    final class FakePF: VFNetConfig {
        let settings = Mutex<[Int: VFSettings]>([:])
        static let factory = VFSettings(mac: "00:00:00:00:00:00", vlan: 0, qos: 0, trust: false, spoofCheck: true)

        func settings(pf: String, vf: Int) throws(NetlinkError) -> VFSettings {
            guard pf == "enp101s0f0" else { throw .kernel(request: "RTM_GETLINK \(pf)", errno: ENODEV) }
            return settings.withLock { $0[vf] } ?? Self.factory
        }

        func apply(_ change: VFSettings, pf: String, vf: Int) throws(NetlinkError) {
            settings.withLock { all in
                var now = all[vf] ?? Self.factory
                if let mac = change.mac { now.mac = mac }
                if let vlan = change.vlan { now.vlan = vlan }
                if let qos = change.qos { now.qos = qos }
                if let trust = change.trust { now.trust = trust }
                if let spoof = change.spoofCheck { now.spoofCheck = spoof }
                all[vf] = now
            }
        }

        func of(_ vf: Int) -> VFSettings { settings.withLock { $0[vf] } ?? Self.factory }
    }

    final class FakeLockLimit: MemoryLockLimit {
        let raised = Mutex<[(Int32, UInt64)]>([])
        func raise(pid: Int32, to bytes: UInt64) throws(KernelFileError) { raised.withLock { $0.append((pid, bytes)) } }
    }

    struct Scene {
        let root: String
        let kernel = FakeKernel()
        let launcher = FakeLauncher()
        let pf = FakePF()
        let lockLimit = FakeLockLimit()
        let manager: VMManager

        init() async throws {
            root = NSTemporaryDirectory() + "corral-hostdev-rt-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            kernel.addSRIOVNIC(totalVFs: 4)   // 0000:65:00.0 enp101s0f0 (ixgbe); VFs 65:10.0, 65:10.2…
            kernel.addBridgedDevice()         // 0000:05:00.0 xhci_hcd behind a root port, group 5
            kernel.addGPU()                   // 0000:01:00.0 nouveau + 0000:01:00.1 snd_hda_intel, group 1
            var options = ManagedVMTests.options
            options.hostDeviceClaims = HostDeviceClaims(
                assignment: DeviceAssignment(tree: kernel, binder: VFIOBinder(tree: kernel, timeout: .milliseconds(200))),
                vfs: VFAllocator(tree: kernel, netdevs: FakeNetdevs()), vfConfig: pf, vfsPerPF: 2, lockLimit: lockLimit)
            manager = try await VMManager.open(stateRoot: root + "/state", launcher: launcher, options: options,
                                               peerConnector: nil, logger: ManagedVMTests.quiet)
        }

        func profile(_ name: String, _ body: String) throws -> String {
            let path = root + "/\(name).yaml"
            try "name: \(name)\naccel: tcg\nmemory: 256M\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func driver(_ address: String) -> String? {
            try? kernel.linkName("/sys/bus/pci/devices/\(address)/driver")
        }

        func read(_ path: String) -> String? { try? kernel.read(path).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    static let failoverVF = """
        nics:
          - { id: net0, mode: user }
        hostdevs:
          - { id: uplink, vf: { netdev: enp101s0f0, vlan: 100, spoofchk: false }, failover: net0 }
        """

    @Test func aVFIsChosenSetUpAndBoundAtStartAndPutBackWhenQEMUEnds() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        let web = scene.launcher.willStart(pid: 5001)
        _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", Self.failoverVF)))

        // The PF had no VFs: it got vfsPerPF (2) with autoprobe off, and VF 0 went to vfio-pci for web.
        #expect(scene.read("/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs") == "2")
        #expect(scene.read("/sys/bus/pci/devices/0000:65:00.0/sriov_drivers_autoprobe") == "0")
        #expect(scene.driver("0000:65:10.0") == "vfio-pci")
        let request = try #require(scene.launcher.requests.last)
        #expect(request.runtimeOptions.hostDevices["uplink"]?.map(\.description) == ["0000:65:10.0"])
        // The VF carries the standby NIC's MAC (the guest bonds the two by it), the VLAN and spoofchk asked for.
        let mac = DeviceProps.stableMAC(vmName: "web", nicID: "net0").lowercased()
        #expect(scene.pf.of(0) == VFSettings(mac: mac, vlan: 100, qos: 0, trust: false, spoofCheck: false))
        let status = try await scene.manager.status("web")
        #expect(status.hostdevs == [.init(id: "uplink", kind: "vf", host: ["0000:65:10.0"], source: "profile",
                                          failover: "net0")])

        // A second VM gets the other VF; a third finds none free and is told why, and nothing of it starts.
        let db = scene.launcher.willStart(pid: 5002)
        _ = try await scene.manager.up(UpRequest(profile: try scene.profile("db", Self.failoverVF)))
        #expect(scene.launcher.requests.last?.runtimeOptions.hostDevices["uplink"]?.map(\.description) == ["0000:65:10.2"])
        let refused = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.up(UpRequest(profile: try scene.profile("cache", Self.failoverVF)))
        }
        #expect(refused?.message.contains("no free VF on 0000:65:00.0") == true, "\(String(describing: refused))")
        #expect(refused?.message.contains("VF 0 (0000:65:10.0) is taken") == true)
        #expect(scene.launcher.startCount == 2)

        // web's QEMU ends: its VF is unbound again (no host driver: autoprobe is off) and its settings are the PF's
        // factory ones again; db keeps its VF.
        web.process.exit(.exited(0))
        let back = await ClusterLabTimer.eventually { scene.driver("0000:65:10.0") == nil }
        #expect(back)
        #expect(scene.pf.of(0) == FakePF.factory)
        #expect(scene.driver("0000:65:10.2") == "vfio-pci")
        #expect(await scene.manager.hostDeviceClaims.held.values.sorted() == ["db"])
        #expect(await scene.manager.hostDeviceClaims.vfs?.reservations.isEmpty == true)
        db.process.exit(.exited(0))
        _ = await ClusterLabTimer.eventually { scene.driver("0000:65:10.2") == nil }
    }

    @Test func aVFThatCannotBeBoundLeavesItsSettingsAsTheyWere() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        // VFs exist already (made by the operator); binding fails at drivers_probe.
        try scene.kernel.write("2", to: "/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs")
        scene.kernel.failWrites(to: "/sys/bus/pci/drivers_probe", errno: EIO)
        scene.launcher.willStart(pid: 5003)
        let refused = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", Self.failoverVF)))
        }
        #expect(refused?.message.contains("hostdevs uplink: VF 0 (0000:65:10.0) of 0000:65:00.0") == true,
                "\(String(describing: refused))")
        #expect(scene.pf.of(0) == FakePF.factory, "the MAC and VLAN set before the bind were put back")
        #expect(scene.driver("0000:65:10.0") == nil)
        #expect(await scene.manager.hostDeviceClaims.held.isEmpty)
        #expect(await scene.manager.hostDeviceClaims.vfs?.reservations.isEmpty == true)
        #expect(scene.launcher.startCount == 0)
    }

    @Test func aVFOfAPFWithoutAnInterfaceCannotTakeNetworkSettings() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        // The PF's own driver is unbound: it has no interface to set VF settings through.
        try scene.kernel.write("0000:65:00.0", to: "/sys/bus/pci/drivers/ixgbe/unbind")
        let refused = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.up(UpRequest(profile: try scene.profile(
                "web", "hostdevs:\n  - { id: vf, vf: { pf: \"0000:65:00.0\", vlan: 7 } }")))
        }
        #expect(refused?.message.contains("0000:65:00.0 has no network interface") == true, "\(String(describing: refused))")
        #expect(await scene.manager.hostDeviceClaims.held.isEmpty)
    }

    @Test func aPlugWaitsForNothingButAnUnplugWaitsForDeviceDeletedBeforeTheDriverComesBack() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        let qemu = scene.launcher.willStart(pid: 5004)
        _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", "hotplug: { slots: 2 }")))
        qemu.qmp.expect("device_add", ["driver": "vfio-pci", "id": "hostdev-usb", "bus": "hp0", "addr": "00.0",
                                       "host": "0000:05:00.0"])
        let added = try await scene.manager.addHostDevice("web", HostDeviceAddRequest(id: "usb", pci: "0000:05:00.0"))
        #expect(added.hostdevs == [.init(id: "usb", kind: "pci", host: ["0000:05:00.0"], source: "plugged")])
        #expect(scene.driver("0000:05:00.0") == "vfio-pci")
        #expect(scene.lockLimit.raised.withLock { $0.map(\.0) } == [5004], "QEMU may now lock guest RAM")
        #expect(scene.lockLimit.raised.withLock { $0.first?.1 } == (256 + 64) << 20)
        let saved = try VMStore(paths: VMPaths(stateRoot: scene.root + "/state", name: "web")).loadConfig()
        #expect(saved?.hotplugged.hostdevs == [PluggedHostDevice(device: .init(id: "usb", pci: try PCIAddress(parsing: "0000:05:00.0")), port: "hp0")])
        // Its memory is pinned now: the host report says so, and no balloon target is accepted.
        let host = await scene.manager.host()
        #expect(host.vms.first { $0.name == "web" }?.pinned == true)
        #expect(host.pinnedMemoryBytes == 256 << 20)
        // The same device for another VM is refused, naming the holder.
        let other = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.addHostDevice("web", HostDeviceAddRequest(id: "usb2", pci: "0000:05:00.0"))
        }
        #expect(other?.message.contains("web") == true)

        // Unplug: the driver comes back only once QEMU reports DEVICE_DELETED.
        let driverAtUnplug = Mutex<String??>(nil)
        let kernel = scene.kernel
        qemu.qmp.expect("device_del", ["id": "hostdev-usb"], .ok(), then: [ScriptedQMP.deviceDeleted("hostdev-usb")],
                        effect: { driverAtUnplug.withLock { $0 = .some(try? kernel.linkName("/sys/bus/pci/devices/0000:05:00.0/driver")) } })
        let removed = try await scene.manager.removeHostDevice("web", id: "usb")
        #expect(driverAtUnplug.withLock { $0 } == .some("vfio-pci"), "still QEMU's when device_del was sent")
        #expect(removed.hostdevs == nil)
        #expect(scene.driver("0000:05:00.0") == "xhci_hcd")
        #expect(await scene.manager.hostDeviceClaims.held.isEmpty)
        qemu.qmp.verify()
    }

    @Test func aRefusedDeviceAddGivesTheDeviceBack() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        let qemu = scene.launcher.willStart(pid: 5005)
        _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", "hotplug: { slots: 2 }")))
        qemu.qmp.expect("device_add", nil, .error("GenericError", "vfio 0000:05:00.0: failed to setup container"))
        let failed = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.addHostDevice("web", HostDeviceAddRequest(id: "usb", pci: "0000:05:00.0"))
        }
        #expect(failed?.message.contains("failed to setup container") == true, "\(String(describing: failed))")
        #expect(scene.driver("0000:05:00.0") == "xhci_hcd")
        #expect(try await scene.manager.status("web").hostdevs == nil)
        #expect(await scene.manager.hostDeviceClaims.held.isEmpty)

        // A VF plugged at run time: chosen, set up, bound and plugged; removing it puts everything back.
        qemu.qmp.expect("device_add", ["driver": "vfio-pci", "id": "hostdev-vf", "bus": "hp0", "addr": "00.0",
                                       "host": "0000:65:10.0"])
        let added = try await scene.manager.addHostDevice("web", HostDeviceAddRequest(id: "vf", vfOf: "enp101s0f0",
                                                                                        mac: "52:54:00:aa:bb:cc"))
        #expect(added.hostdevs?.first?.host == ["0000:65:10.0"])
        #expect(scene.pf.of(0).mac == "52:54:00:aa:bb:cc")
        qemu.qmp.expect("device_del", ["id": "hostdev-vf"], .ok(), then: [ScriptedQMP.deviceDeleted("hostdev-vf")])
        _ = try await scene.manager.removeHostDevice("web", id: "vf")
        #expect(scene.pf.of(0) == FakePF.factory)
        #expect(scene.driver("0000:65:10.0") == nil)
        qemu.qmp.verify()
    }

    @Test func theListingShowsGroupsPFsAndHolders() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        scene.launcher.willStart(pid: 5006)
        _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", Self.failoverVF)))
        let report = try await scene.manager.hostDevices()
        #expect(report.iommu == ["dmar0"])
        let gpu = try #require(report.groups.first { $0.number == 1 })
        #expect(gpu.devices.map(\.address) == ["0000:01:00.0", "0000:01:00.1"])
        #expect(gpu.devices.map(\.kind) == ["VGA", "HD audio"])
        #expect(gpu.hostBound == ["0000:01:00.0", "0000:01:00.1"])
        let usb = try #require(report.groups.first { $0.number == 5 })
        #expect(usb.hostBound == ["0000:05:00.0"], "the bridge does not count")
        let pf = try #require(report.physicalFunctions.first)
        #expect(pf.address == "0000:65:00.0" && pf.netdev == "enp101s0f0")
        #expect((pf.totalVFs, pf.numVFs, pf.usedVFs) == (4, 2, 1))
        #expect(pf.vfs.map(\.vm) == ["web", nil])
        let vf = report.groups.flatMap(\.devices).first { $0.address == "0000:65:10.0" }
        #expect(vf?.vm == "web" && vf?.driver == "vfio-pci" && vf?.physicalFunction == "0000:65:00.0")
    }
}
