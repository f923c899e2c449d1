import CorralModel
import Foundation
import Testing
@testable import HostDevices
@testable import Supervisor
#if canImport(Glibc)
import Glibc
#endif

/// Binding to vfio-pci and back against the fake kernel.
struct VFIOBinderTests {
    static func address(_ text: String) -> PCIAddress { try! PCIAddress(parsing: text) }
    static func binder(_ kernel: FakeKernel) -> VFIOBinder {
        VFIOBinder(tree: kernel, timeout: .milliseconds(100), interval: .milliseconds(10), pause: { _ in })
    }

    @Test func bindThenRestoreLeavesTheTreeAsItWas() async throws {
        let kernel = FakeKernel()
        kernel.addNonViableGroup()
        let before = kernel.snapshot
        let nic = Self.address("0000:03:00.0")
        let record = try await Self.binder(kernel).bind(nic)
        #expect(record == BindRecord(address: nic, originalDriver: "igb", iommuGroup: 3))
        #expect(kernel.exists("/dev/vfio/3"))
        #expect(try kernel.linkName("/sys/bus/pci/devices/0000:03:00.0/driver") == "vfio-pci")
        #expect(kernel.writes == [
            "/sys/bus/pci/devices/0000:03:00.0/driver_override <- vfio-pci",
            "/sys/bus/pci/drivers/igb/unbind <- 0000:03:00.0",
            "/sys/bus/pci/drivers_probe <- 0000:03:00.0",
        ])
        try Self.binder(kernel).restore(record)
        #expect(kernel.snapshot == before)
        #expect(try kernel.read("/sys/bus/pci/devices/0000:03:00.0/driver_override") == "(null)\n")
        #expect(kernel.writes.suffix(3) == [
            "/sys/bus/pci/devices/0000:03:00.0/driver_override <- \\n",
            "/sys/bus/pci/drivers/vfio-pci/unbind <- 0000:03:00.0",
            "/sys/bus/pci/drivers_probe <- 0000:03:00.0",
        ])
        #expect(!kernel.writes.contains { $0.contains("new_id") })
        // The record is what the daemon persists.
        let decoded = try JSONDecoder().decode(BindRecord.self, from: JSONEncoder().encode(record))
        #expect(decoded == record)
    }

    @Test func anUnboundDeviceIsBoundAndLeftUnboundAgain() async throws {
        let kernel = FakeKernel()
        kernel.addDevice("0000:07:00.0", vendor: 0x1af4, device: 0x1041, classCode: 0x020000, driver: nil, group: 9)
        let before = kernel.snapshot
        let record = try await Self.binder(kernel).bind(Self.address("0000:07:00.0"))
        #expect(record.originalDriver == nil && kernel.exists("/dev/vfio/9"))
        try Self.binder(kernel).restore(record)
        #expect(kernel.snapshot == before)
    }

    @Test func theGPUWithAllFunctionsIsBoundWholeAndReleasedWhole() async throws {
        let kernel = FakeKernel()
        kernel.addGPU()
        let before = kernel.snapshot
        let assignment = DeviceAssignment(tree: kernel, binder: Self.binder(kernel))
        let records = try await assignment.assign([Self.address("0000:01:00.0")], allFunctions: true, to: "gpu", holders: [:])
        #expect(records == [BindRecord(address: Self.address("0000:01:00.0"), originalDriver: "nouveau", iommuGroup: 1),
                            BindRecord(address: Self.address("0000:01:00.1"), originalDriver: "snd_hda_intel", iommuGroup: 1)])
        let inventory = try PCIInventory.scan(kernel)
        #expect(inventory.members(ofGroup: 1).allSatisfy { $0.driver == "vfio-pci" })
        #expect(assignment.release(records).isEmpty)
        #expect(kernel.snapshot == before)
    }

    @Test func aNonViableGroupIsRefusedBeforeAnythingIsWritten() async throws {
        let kernel = FakeKernel()
        kernel.addNonViableGroup()
        let assignment = DeviceAssignment(tree: kernel, binder: Self.binder(kernel))
        do {
            _ = try await assignment.assign([Self.address("0000:03:00.0")], allFunctions: false, to: "web", holders: [:])
            Issue.record("bound a device whose group the host's NVMe drive shares")
        } catch {
            #expect(error == .refused(.groupNotViable(device: Self.address("0000:03:00.0"), group: 3, offenders: [
                .init(address: Self.address("0000:04:00.0"), driver: "nvme")])))
            #expect(error.description.hasPrefix("0000:03:00.0 is in IOMMU group 3 with devices the host still uses: "
                + "0000:04:00.0 (bound to nvme); "))
        }
        #expect(kernel.writes.isEmpty)
    }

    @Test func whenTheGroupNodeNeverAppearsTheDeviceIsPutBack() async throws {
        let kernel = FakeKernel()
        kernel.addNonViableGroup()
        kernel.createsGroupNodes = false
        let before = kernel.snapshot
        do {
            _ = try await Self.binder(kernel).bind(Self.address("0000:03:00.0"))
            Issue.record("the bind returned without /dev/vfio/3")
        } catch {
            #expect(error == .groupNodeMissing(device: Self.address("0000:03:00.0"), path: "/dev/vfio/3",
                                               waitedMilliseconds: 100, restoreFailure: nil))
            #expect(error.description == "0000:03:00.0: /dev/vfio/3 did not appear within 100 ms after binding to "
                + "vfio-pci; the device was put back as it was")
        }
        #expect(kernel.snapshot == before)
    }

    @Test func aFailedWriteNamesTheFileAndErrnoAndUndoesTheOverride() async throws {
        let kernel = FakeKernel()
        kernel.addNonViableGroup()
        let before = kernel.snapshot
        kernel.failWrites(to: "/sys/bus/pci/drivers_probe", errno: ENOMEM)
        do {
            _ = try await Self.binder(kernel).bind(Self.address("0000:03:00.0"))
            Issue.record("the bind went through a failing drivers_probe")
        } catch {
            // Restoring writes drivers_probe too: that fails the same way, so both are reported.
            guard case .bindAndRestoreFailed(let cause, let restore) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(cause == "0000:03:00.0: write /sys/bus/pci/drivers_probe: Cannot allocate memory")
            #expect(restore == cause)
        }
        kernel.failWrites(to: "none", errno: 0)
        #expect(try kernel.read("/sys/bus/pci/devices/0000:03:00.0/driver_override") == "(null)\n")
        try kernel.write("0000:03:00.0", to: "/sys/bus/pci/drivers_probe")
        #expect(kernel.snapshot == before)
    }

    @Test func vfioPCINotLoadedIsReportedAndTheDeviceGoesBack() async throws {
        let kernel = FakeKernel()
        kernel.addNonViableGroup()
        kernel.state.withLock { $0.tree.remove("/sys/bus/pci/drivers/vfio-pci") }
        let before = kernel.snapshot
        await #expect(throws: VFIOBindError.wrongDriver(device: Self.address("0000:03:00.0"), expected: "vfio-pci", found: nil)) {
            try await Self.binder(kernel).bind(Self.address("0000:03:00.0"))
        }
        #expect(kernel.snapshot == before)
    }
}
