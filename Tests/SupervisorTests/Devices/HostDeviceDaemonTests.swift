import CorralModel
import Foundation
import Logging
import Synchronization
import Testing
@testable import HostDevices
@testable import Supervisor

/// The daemon and host devices, over the fake kernel and scripted QEMUs: a VM's `pci` devices are on vfio-pci while
/// its QEMU runs (QEMU is told their addresses) and back on their drivers when it ends, when its start fails and
/// when they cannot all be bound; a device another VM holds is refused.
@Suite(.serialized) struct HostDeviceDaemonTests {
    struct Scene {
        let root: String
        let kernel = FakeKernel()
        let launcher = FakeLauncher()
        let manager: VMManager

        init() async throws {
            root = NSTemporaryDirectory() + "corral-hostdev-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            kernel.addGPU()                 // 0000:01:00.0 nouveau, 0000:01:00.1 snd_hda_intel, group 1
            kernel.addNonViableGroup()      // 0000:03:00.0 igb beside an nvme drive, group 3
            var options = ManagedVMTests.options
            options.hostDeviceClaims = HostDeviceClaims(assignment: DeviceAssignment(
                tree: kernel, binder: VFIOBinder(tree: kernel, timeout: .milliseconds(200))))
            manager = try await VMManager.open(stateRoot: root + "/state", launcher: launcher, options: options,
                                               peerConnector: nil, logger: ManagedVMTests.quiet)
        }

        func profile(_ name: String, _ hostdevs: String) throws -> String {
            let path = root + "/\(name).yaml"
            try "name: \(name)\naccel: tcg\nmemory: 256M\nhostdevs:\n\(hostdevs)\n".write(toFile: path, atomically: true,
                                                                                      encoding: .utf8)
            return path
        }

        var gpuDrivers: [String?] {
            ["0000:01:00.0", "0000:01:00.1"].map { try? kernel.linkName("/sys/bus/pci/devices/\($0)/driver") }
        }
    }

    static let gpu = "  - { id: gpu, pci: \"0000:01:00.0\", allFunctions: true }"

    @Test func boundWhileQEMURunsAndGivenBackWhenItEnds() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        let qemu = scene.launcher.willStart(pid: 4242)
        _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", Self.gpu)))
        #expect(scene.gpuDrivers == ["vfio-pci", "vfio-pci"])
        let request = try #require(scene.launcher.requests.last)
        #expect(request.runtimeOptions.hostDevices["gpu"]?.map(\.description) == ["0000:01:00.0", "0000:01:00.1"])
        #expect(await scene.manager.hostDeviceClaims.held.count == 2)

        // A second VM asking for the same GPU is refused, naming the holder; nothing of it starts.
        let refused = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.up(UpRequest(profile: try scene.profile("db", Self.gpu)))
        }
        #expect(refused?.message.contains("web") == true, "\(String(describing: refused))")
        #expect(scene.launcher.startCount == 1)

        // QEMU ends: the devices go back to their own drivers.
        qemu.process.exit(.exited(0))
        let back = await ClusterLabTimer.eventually { scene.gpuDrivers == ["nouveau", "snd_hda_intel"] }
        #expect(back, "\(scene.gpuDrivers)")
        #expect(await scene.manager.hostDeviceClaims.held.isEmpty)
    }

    @Test func aFailedStartAndANonViableGroupLeaveNothingBound() async throws {
        let scene = try await Scene()
        defer { try? FileManager.default.removeItem(atPath: scene.root) }
        scene.launcher.willStart(pid: 4243, failing: "vfio: group 1 is not viable")
        await #expect(throws: ControlError.self) {
            _ = try await scene.manager.up(UpRequest(profile: try scene.profile("web", Self.gpu)))
        }
        #expect(scene.gpuDrivers == ["nouveau", "snd_hda_intel"], "given back after the failed start")

        let before = scene.kernel.snapshot
        let refusal = await #expect(throws: ControlError.self) {
            _ = try await scene.manager.up(UpRequest(profile: try scene.profile(
                "nic", Self.gpu + "\n  - { id: nic, pci: \"0000:03:00.0\" }")))
        }
        #expect(refusal?.message.contains("hostdevs nic:") == true && refusal?.message.contains("nvme") == true,
                "\(String(describing: refusal))")
        #expect(scene.kernel.snapshot == before, "the GPU bound first was given back too")
        #expect(scene.launcher.startCount == 1, "QEMU never started for the refused VM")
    }
}

extension HostDeviceDaemonTests {
    /// An unprivileged QEMU's VFIO access: its group nodes become its uid's, and the device cgroup lets it open the
    /// container and exactly those nodes (a real character device made with mknod; the tests run as root).
    @Test func theGroupNodesAreHandedToTheVMsUID() async throws {
        try #require(getuid() == 0, "mknod needs root (the system test run is root)")
        let root = NSTemporaryDirectory() + "corral-vfio-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/dev/vfio", withIntermediateDirectories: true)
        let node = root + "/dev/vfio/7"
        try #require(mknod(node, S_IFCHR | 0o600, dev_t((243 << 8) | 7)) == 0, "mknod: \(String(cString: strerror(errno)))")
        let kernel = FakeKernel()
        let claims = HostDeviceClaims(assignment: DeviceAssignment(tree: kernel, binder: VFIOBinder(tree: kernel)),
                                      devRoot: root)
        let records = [BindRecord(address: try PCIAddress(parsing: "0000:01:00.0"), originalDriver: "nouveau", iommuGroup: 7),
                       BindRecord(address: try PCIAddress(parsing: "0000:01:00.1"), originalDriver: "snd", iommuGroup: 7)]
        let rules = await claims.handOver(records, to: 2_000_123)
        #expect(rules.map(\.line) == ["c 10:196 rw", "c 243:7 rw"])
        var info = stat()
        #expect(stat(node, &info) == 0 && info.st_uid == 2_000_123 && info.st_gid == 2_000_123)
    }
}

/// Polls `body` every 20 ms for up to 5 s.
enum ClusterLabTimer {
    static func eventually(_ body: () async -> Bool) async -> Bool {
        for _ in 0..<250 {
            if await body() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await body()
    }
}
