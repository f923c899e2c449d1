import Profiles

/// Where a PCI device sits: a bus id and, on the root bus, an explicit `slot.function`.
public struct PCIPlacement: Sendable, Equatable, Codable {
    public var bus: String
    /// QEMU `addr` (`"05.0"`: hex slot, function); nil lets QEMU choose (only slot 0 exists behind a root port).
    public var addr: String?

    public init(bus: String, addr: String? = nil) {
        self.bus = bus
        self.addr = addr
    }
}

/// A hotplug port: on q35 a `pcie-root-port` device; on i440fx a reserved slot on `pci.0`.
public struct HotplugPort: Sendable, Equatable {
    public var id: String
    /// Address of the port itself (q35) or of the reserved slot (i440fx) on the root bus.
    public var addr: String
    /// q35 only: PCIe chassis and physical slot number; each (chassis, slot) pair is unique.
    public var chassis: Int
    public var slot: Int
    /// q35 only: set on function 0 of a slot that holds more than one root port.
    public var multifunction: Bool
}

/// The PCI address plan of a profile. Every device on the root bus gets an explicit address, so
/// the layout depends only on the profile (not on argv order or on what was unplugged), and a
/// migration destination built from the same `LiveConfig` has the identical layout.
///
/// Root bus slots are handed out in this order:
/// 1. hotplug ports — q35: `pcie-root-port`s packed eight per slot (functions 0–7, multifunction);
///    i440fx: one reserved slot per port; then (q35 only) one root port per profile host device, `hd-ID`, packed
///    the same way right after them;
/// 2. profile disks, one slot each (for virtio-scsi the slot holds the disk's own controller);
/// 3. profile NICs, one slot each;
/// 4. the balloon;
/// 5. the guest agent's virtio-serial controller (`agent: true`);
/// 6. the video device (`display`).
///
/// q35 uses slots 0x01–0x1e of `pcie.0` (0x00 is the host bridge, 0x1f the ICH9 functions);
/// i440fx uses 0x02–0x1f of `pci.0` (0x00 host bridge, 0x01 PIIX3).
public struct PCILayout: Sendable, Equatable {
    public let isPCIe: Bool
    public let rootBus: String
    public let ports: [HotplugPort]
    /// Parallel to `profile.hostdevs`: each one's own root port (q35; a profile with hostdevs must be q35).
    public let hostdevPorts: [HotplugPort]
    /// Parallel to `profile.disks`.
    public let disks: [PCIPlacement]
    /// Parallel to `profile.nics`.
    public let nics: [PCIPlacement]
    public let balloon: PCIPlacement?
    /// The virtio-serial controller of the guest agent's channel.
    public let agentSerial: PCIPlacement?
    /// The video device (`display.vga` other than none).
    public let video: PCIPlacement?
    /// Non-empty when the profile needs more root-bus slots than the machine has.
    public let problems: [String]

    public static let portsPerSlot = 8

    /// True for the q35 family (PCI Express root complex `pcie.0`); false for i440fx (`pci.0`).
    public static func isPCIe(machine: String) -> Bool {
        machine == "q35" || machine.hasPrefix("pc-q35")
    }

    public init(profile: Profile) {
        let pcie = PCILayout.isPCIe(machine: profile.machine)
        isPCIe = pcie
        rootBus = pcie ? "pcie.0" : "pci.0"
        let firstSlot = pcie ? 0x01 : 0x02
        let lastSlot = pcie ? 0x1e : 0x1f
        var next = firstSlot

        let portIDs = DeviceProps.hotplugPortIDs(count: max(0, profile.hotplug.slots))
        var ports: [HotplugPort] = []
        var hostdevPorts: [HotplugPort] = []
        if pcie {
            let allIDs = portIDs + profile.hostdevs.map(DeviceProps.hostDevicePortID)
            for (i, id) in allIDs.enumerated() {
                let slot = firstSlot + i / PCILayout.portsPerSlot
                let function = i % PCILayout.portsPerSlot
                let sharesSlot = allIDs.count > i - function + 1
                let port = HotplugPort(id: id, addr: PCILayout.addr(slot, function), chassis: 1, slot: i + 1,
                                       multifunction: function == 0 && sharesSlot)
                if i < portIDs.count { ports.append(port) } else { hostdevPorts.append(port) }
            }
            next += (allIDs.count + PCILayout.portsPerSlot - 1) / PCILayout.portsPerSlot
        } else {
            for (i, id) in portIDs.enumerated() {
                ports.append(HotplugPort(id: id, addr: PCILayout.addr(next, 0), chassis: 0, slot: i + 1,
                                         multifunction: false))
                next += 1
            }
        }
        self.ports = ports
        self.hostdevPorts = hostdevPorts

        func take() -> PCIPlacement {
            defer { next += 1 }
            return PCIPlacement(bus: pcie ? "pcie.0" : "pci.0", addr: PCILayout.addr(next, 0))
        }
        disks = profile.disks.map { _ in take() }
        nics = profile.nics.map { _ in take() }
        balloon = profile.memory.balloon == nil ? nil : take()
        agentSerial = profile.agent ? take() : nil
        video = (profile.display?.vga ?? .none) == .none ? nil : take()

        let used = next - firstSlot
        let available = lastSlot - firstSlot + 1
        problems = used > available
            ? ["the profile needs \(used) PCI slots on \(rootBus) but \(profile.machine) has \(available); "
                + "use fewer disks, NICs or hotplug slots"]
            : []
    }

    /// Where a device plugged on hotplug port `id` goes: behind the root port on q35 (QEMU puts it at
    /// slot 0), or at the port's reserved slot on `pci.0` for i440fx.
    public func placement(forPort id: String) -> PCIPlacement {
        if isPCIe { return PCIPlacement(bus: id) }
        return PCIPlacement(bus: rootBus, addr: ports.first { $0.id == id }?.addr)
    }

    static func addr(_ slot: Int, _ function: Int) -> String {
        StableIDs.hexByte(UInt8(truncatingIfNeeded: slot)) + "." + String(function, radix: 16)
    }
}
