import CorralModel
import JSON
import Profiles

/// Host devices as QEMU devices (docs/devices.md):
///
/// | what | id |
/// |---|---|
/// | a host device, function 0 (or the only one) | `hostdev-ID` |
/// | its other functions (`allFunctions`) | `hostdev-ID-fN` |
/// | its root port (profile hostdevs) | `hd-ID` |
/// | an emulated stand-in's netdev | `hostnet-ID` |
///
/// A failover pair: the NIC gets `failover: true`, the device `failover_pair_id: nic-NICID`; QEMU keeps the device
/// hidden until the guest's virtio-net driver negotiates STANDBY, and unplugs it for a migration.
extension DeviceProps {
    public static func hostDeviceID(_ device: HostDevice, function: Int = 0) -> String {
        "hostdev-" + device.id + (function == 0 ? "" : "-f\(function)")
    }

    public static func hostDevicePortID(_ device: HostDevice) -> String { "hd-" + device.id }
    public static func hostDeviceNetdevID(_ device: HostDevice) -> String { "hostnet-" + device.id }

    /// The host addresses a device stands for when the daemon has not resolved them (`corral argv`): the given
    /// address; a VF is chosen at start.
    public static func unresolvedAddresses(_ device: HostDevice) -> [String] {
        if let pci = device.pci { return [pci.description] }
        if let vf = device.vf { return ["vf-of:" + (vf.pf?.description ?? vf.netdev ?? "?")] }
        return []
    }

    /// The `-device` entries of one host device on `bus`: one per host function (`hosts`, function 0 first; a VF or
    /// a single device has one), or the emulated stand-in. `pairedNIC`: the NIC standing by for it.
    public static func hostDevices(_ device: HostDevice, hosts: [String], bus: String, pairedNIC: NIC?,
                                   vmName: String) -> [JSONObject] {
        let pair: JSONValue? = pairedNIC.map { .string(nicDeviceID($0)) }
        if let emulated = device.emulated {
            var object: JSONObject = ["driver": .string(emulated.driver), "id": .string(hostDeviceID(device))]
            place(&object, bus: bus, addr: "00.0")
            object["netdev"] = .string(hostDeviceNetdevID(device))
            if let nic = pairedNIC { object["mac"] = .string(nic.mac ?? stableMAC(vmName: vmName, nicID: nic.id)) }
            if let pair { object["failover_pair_id"] = pair }
            // No option ROM: its RAM block would be in the migration stream's RAM list (taken before QEMU unplugs
            // the primary), and the destination, whose primary stays hidden until the guest negotiates, has none.
            object["romfile"] = ""
            return [object]
        }
        return hosts.enumerated().map { function, host in
            var object: JSONObject = ["driver": "vfio-pci", "id": .string(hostDeviceID(device, function: function))]
            place(&object, bus: bus, addr: "00.\(function)")
            object["host"] = .string(host)
            if function == 0, hosts.count > 1 { object["multifunction"] = true }
            if let rombar = device.rombar { object["rombar"] = .int(rombar ? 1 : 0) }
            if let romfile = device.romfile, function == 0 { object["romfile"] = .string(romfile) }
            if let pair { object["failover_pair_id"] = pair }
            return object
        }
    }

    /// The netdev of an emulated stand-in: user-mode networking of its own (it carries the guest's traffic only while
    /// plugged; the standby NIC keeps the guest's address).
    public static func hostDeviceNetdev(_ device: HostDevice) -> JSONObject? {
        guard device.emulated != nil else { return nil }
        return ["type": "user", "id": .string(hostDeviceNetdevID(device))]
    }

    /// The NIC standing by for `device`, if any.
    public static func failoverNIC(_ device: HostDevice, in profile: Profile) -> NIC? {
        device.failover.flatMap { id in profile.nics.first { $0.id == id } }
    }

    /// True for a NIC some host device of the profile names as its standby.
    public static func isFailoverStandby(_ nic: NIC, in profile: Profile) -> Bool {
        profile.hostdevs.contains { $0.failover == nic.id }
    }
}
