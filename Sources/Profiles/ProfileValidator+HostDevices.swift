import CorralModel

/// `hostdevs:` checks (docs/devices.md). What can only be known on the host (an IOMMU, the device's group, a free
/// VF) is the daemon's to check when it starts the VM.
extension ProfileChecker {
    /// QEMU's limit is far higher; a VM with more assigned devices than this is a mistake.
    static let maxHostDevices = 16

    mutating func validateHostDevices(_ profile: inout Profile) {
        guard usable("hostdevs"), !profile.hostdevs.isEmpty else { return }
        if profile.hostdevs.count > Self.maxHostDevices {
            problem("hostdevs", "\(profile.hostdevs.count) devices is more than \(Self.maxHostDevices)")
        }
        if usable("machine"), !Self.isPCIeMachine(profile.machine) {
            problem("hostdevs", "needs machine q35 (each device sits on its own PCI Express root port); "
                + "machine is \(profile.machine)")
        }
        // VFIO pins every page of guest RAM for DMA: a balloon cannot give any back, KSM cannot merge any.
        if profile.memory.balloon != nil, usable("memory.balloon") {
            problem("memory.balloon", "a VM with hostdevs has all its memory pinned for the devices' DMA, so a "
                + "balloon cannot give any back; remove memory.balloon")
        }
        // (merge defaults to true; a VM with hostdevs runs with mem-merge=off whatever it says, so only a written
        // `merge: true` is a mistake worth reporting.)
        if profile.memory.merge, given("memory.merge"), !everythingGiven {
            problem("memory.merge", "a VM with hostdevs has all its memory pinned for the devices' DMA; KSM cannot "
                + "merge it; remove memory.merge")
        }
        var pairedNICs: [String: String] = [:]
        var addresses: [PCIAddress: String] = [:]
        for index in profile.hostdevs.indices {
            let path = "hostdevs[\(index)]"
            let device = profile.hostdevs[index]
            let sources = [device.pci != nil, device.vf != nil, device.emulated != nil].filter { $0 }.count
            if sources != 1, usable(path + ".pci", path + ".vf", path + ".emulated") {
                problem(path, sources == 0
                    ? "give one of pci (a device by address), vf (a virtual function of an SR-IOV device) or emulated"
                    : "give only one of pci, vf and emulated")
                continue
            }
            if let address = device.pci {
                if device.allFunctions, address.function != 0 {
                    problem(path + ".allFunctions", "takes the device's function 0 (\(address.withFunction(0))), "
                        + "got \(address)")
                }
                let covered = device.allFunctions ? (0...7).map { address.withFunction(UInt8($0)) } : [address]
                for taken in covered {
                    if let other = addresses[taken] {
                        problem(path + ".pci", "\(taken) is already given by \(other)")
                        break
                    }
                }
                for taken in covered { addresses[taken] = addresses[taken] ?? path }
            } else if device.allFunctions {
                problem(path + ".allFunctions", "is only used with pci")
            }
            if let romfile = device.romfile, romfile.utf8.contains(0) {
                problem(path + ".romfile", "must not contain a NUL byte")
            }
            if device.emulated != nil, device.rombar != nil || device.romfile != nil {
                problem(path + (device.rombar != nil ? ".rombar" : ".romfile"), "is only used with pci or vf")
            }
            if let vf = device.vf { validateVF(vf, path: path + ".vf", into: &profile.hostdevs[index]) }
            if let nic = device.failover, usable(path + ".failover") {
                validateFailover(nic, device: device, path: path, profile: profile, paired: &pairedNICs)
            } else if device.emulated != nil, device.failover == nil, usable(path + ".failover") {
                problem(path + ".emulated", "stands in for a VF in a failover pair: it needs failover (a virtio-net NIC's id)")
            }
        }
    }

    mutating func validateVF(_ vf: VirtualFunction, path: String, into device: inout HostDevice) {
        if (vf.pf == nil) == (vf.netdev == nil), usable(path + ".pf", path + ".netdev") {
            problem(path, "give one of pf (the physical function's address) or netdev (its host interface)")
        }
        if let netdev = vf.netdev, usable(path + ".netdev"), !InterfaceName.isValid(netdev) {
            problem(path + ".netdev", "'\(netdev)' is not a valid interface name (\(InterfaceName.rule))")
        }
        if let mac = vf.mac, usable(path + ".mac") {
            if let normalized = MACAddress.normalized(mac), MACAddress.isUnicast(normalized) {
                device.vf?.mac = normalized
            } else {
                problem(path + ".mac", "'\(mac)' is not a unicast MAC address (six hex pairs like 52:54:00:12:34:56, "
                    + "first octet even)")
            }
        }
        if let vlan = vf.vlan, usable(path + ".vlan"), !(1...4094).contains(vlan) {
            problem(path + ".vlan", "must be between 1 and 4094, got \(vlan)")
        }
    }

    mutating func validateFailover(_ nicID: String, device: HostDevice, path: String, profile: Profile,
                                   paired: inout [String: String]) {
        let field = path + ".failover"
        guard device.pci == nil else {
            problem(field, "is only used with vf or emulated (a whole device by address cannot be unplugged and "
                + "replaced on another host)")
            return
        }
        guard let nic = profile.nics.first(where: { $0.id == nicID }) else {
            let ids = profile.nics.map(\.id)
            problem(field, "'\(nicID)' is not a NIC of this profile"
                + (ids.isEmpty ? " (it has none)" : " (NICs: \(ids.joined(separator: ", ")))"))
            return
        }
        if nic.model != .virtioNet {
            problem(field, "NIC \(nicID) must be model virtio-net to stand by (it is \(nic.model.rawValue))")
        }
        if let other = paired[nicID] {
            problem(field, "NIC \(nicID) already stands by for \(other)")
        }
        paired[nicID] = paired[nicID] ?? path
        if let vfMAC = device.vf?.mac, let nicMAC = nic.mac, MACAddress.normalized(vfMAC) != MACAddress.normalized(nicMAC) {
            problem(path + ".vf.mac", "\(vfMAC) differs from NIC \(nicID)'s mac \(nicMAC): a failover pair shares "
                + "one MAC (leave one of them out)")
        }
    }

    static func isPCIeMachine(_ machine: String) -> Bool {
        machine == "q35" || machine.hasPrefix("pc-q35")
    }
}
