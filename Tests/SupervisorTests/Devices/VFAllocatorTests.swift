import CorralModel
import Synchronization
import Testing
@testable import HostDevices
@testable import Supervisor
#if canImport(Glibc)
import Glibc
#endif

/// SR-IOV VFs: made on demand, chosen lowest-free, never handed out twice.
struct VFAllocatorTests {
    static func address(_ text: String) -> PCIAddress { try! PCIAddress(parsing: text) }
    static let pf = address("0000:65:00.0")
    static let numvfs = "/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs"

    @Test func theFakeKernelOnlyChangesANonZeroCountThroughZero() throws {
        let kernel = FakeKernel()
        kernel.addSRIOVNIC()
        try kernel.write("2", to: Self.numvfs)
        #expect(throws: KernelFileError(operation: "write", path: Self.numvfs, errno: EBUSY)) {
            try kernel.write("4", to: Self.numvfs)
        }
        #expect(throws: KernelFileError(operation: "write", path: Self.numvfs, errno: ERANGE)) {
            try kernel.write("0", to: Self.numvfs)
            try kernel.write("9", to: Self.numvfs)
        }
        try kernel.write("4", to: Self.numvfs)
        #expect(try PCIInventory.scan(kernel)[Self.pf]?.sriov?.virtualFunctions.count == 4)
    }

    @Test func aPFWithoutVFsGetsThemWithAutoprobeOffAndTheFirstIsReserved() async throws {
        let kernel = FakeKernel()
        kernel.addSRIOVNIC()
        let allocator = VFAllocator(tree: kernel, netdevs: FakeNetdevs())
        let vf = try await allocator.reserve(from: .netdev("enp101s0f0"), wanted: 4, held: [:], for: "web")
        #expect(vf == VFReservation(physicalFunction: Self.pf, pfNetdev: "enp101s0f0", index: 0,
                                    address: Self.address("0000:65:10.0")))
        #expect(kernel.writes == [
            "/sys/bus/pci/devices/0000:65:00.0/sriov_drivers_autoprobe <- 0",
            "/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs <- 4",
        ])
        let inventory = try PCIInventory.scan(kernel)
        #expect(inventory[vf.address]?.driver == nil, "autoprobe was off: no host driver took the VFs")
        #expect(await allocator.reservations == [vf.address: "web"])
    }

    @Test func tooFewVFsAreRemadeThroughZeroOnlyWhenNoneIsInUse() async throws {
        let kernel = FakeKernel()
        kernel.addSRIOVNIC()
        try kernel.write("2", to: Self.numvfs)
        let allocator = VFAllocator(tree: kernel, netdevs: FakeNetdevs())
        let held = [Self.address("0000:65:10.0"): "db"]
        await #expect(throws: VFAllocationError.wouldRemoveVFsInUse(pf: Self.pf, current: 2, wanted: 4,
                                                                   inUse: [Self.address("0000:65:10.0")])) {
            try await allocator.reserve(from: .address(Self.pf), wanted: 4, held: held, for: "web")
        }
        // Enough already: no change, and the held VF is skipped.
        let second = try await allocator.reserve(from: .address(Self.pf), wanted: 2, held: held, for: "web")
        #expect(second.index == 1)
        await allocator.release(second.address)
        // None in use: 0 first, then the new count.
        let first = try await allocator.reserve(from: .address(Self.pf), wanted: 4, held: [:], for: "web")
        #expect(first.index == 0)
        #expect(kernel.writes.suffix(3) == [
            "/sys/bus/pci/devices/0000:65:00.0/sriov_drivers_autoprobe <- 0",
            "/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs <- 0",
            "/sys/bus/pci/devices/0000:65:00.0/sriov_numvfs <- 4",
        ])
    }

    @Test func aVFWhoseInterfaceIsUpOrAddressedIsSkipped() async throws {
        let kernel = FakeKernel()
        kernel.addSRIOVNIC()
        try kernel.write("3", to: Self.numvfs)   // autoprobe on: ixgbevf has them, enp101s0f0v0…
        let netdevs = FakeNetdevs()
        netdevs.set("enp101s0f0v0", NetdevState(isUp: true))
        netdevs.set("enp101s0f0v1", NetdevState(isUp: false, addresses: ["192.0.2.7"]))
        let allocator = VFAllocator(tree: kernel, netdevs: netdevs)
        let vf = try await allocator.reserve(from: .address(Self.pf), wanted: 3, held: [:], for: "web")
        #expect(vf.index == 2 && vf.address == Self.address("0000:65:10.4"))
        await #expect(throws: VFAllocationError.noFreeVF(pf: Self.pf, reasons: [
            "VF 0 (0000:65:10.0) has interface enp101s0f0v0 up or addressed",
            "VF 1 (0000:65:10.2) has interface enp101s0f0v1 up or addressed",
            "VF 2 (0000:65:10.4) is taken",
        ])) {
            try await allocator.reserve(from: .address(Self.pf), wanted: 3, held: [:], for: "db")
        }
    }

    @Test func manyConcurrentReservationsNeverShareAVF() async throws {
        for _ in 0..<20 {
            let kernel = FakeKernel()
            kernel.addSRIOVNIC(totalVFs: 8)
            let allocator = VFAllocator(tree: kernel, netdevs: FakeNetdevs())
            let results = await withTaskGroup(of: PCIAddress?.self) { group in
                for n in 0..<12 {
                    group.addTask { try? await allocator.reserve(from: .netdev("enp101s0f0"), wanted: 8, held: [:], for: "vm\(n)").address }
                }
                var all: [PCIAddress?] = []
                for await result in group { all.append(result) }
                return all
            }
            let granted = results.compactMap { $0 }
            #expect(granted.count == 8, "8 VFs for 12 asks")
            #expect(Set(granted).count == granted.count, "a VF was handed out twice")
            #expect(kernel.writes.filter { $0.hasSuffix("sriov_numvfs <- 8") }.count == 1)
        }
    }

    @Test func unknownOrNonSRIOVPFsAreNamed() async throws {
        let kernel = FakeKernel()
        kernel.addGPU()
        let allocator = VFAllocator(tree: kernel, netdevs: FakeNetdevs())
        await #expect(throws: VFAllocationError.noSuchNetdev("eth9")) {
            try await allocator.reserve(from: .netdev("eth9"), wanted: 1, held: [:], for: "web")
        }
        await #expect(throws: VFAllocationError.notSRIOV(Self.address("0000:01:00.0"))) {
            try await allocator.reserve(from: .address(Self.address("0000:01:00.0")), wanted: 1, held: [:], for: "web")
        }
    }
}

/// Interfaces' states as the tests set them; an unknown one is down without addresses.
final class FakeNetdevs: NetdevStateProbe {
    let states = Mutex<[String: NetdevState]>([:])

    func set(_ netdev: String, _ state: NetdevState) { states.withLock { $0[netdev] = state } }

    func state(of netdev: String) throws(KernelFileError) -> NetdevState {
        states.withLock { $0[netdev] } ?? NetdevState(isUp: false)
    }
}
