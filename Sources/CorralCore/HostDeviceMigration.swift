import Profiles
import QEMUCommand

/// Which VMs with host devices can live-migrate (pure): only when every host device is a failover primary (a VF, or
/// its emulated stand-in, paired with a virtio-net NIC). QEMU unplugs those for the move and the destination plugs
/// its own; a whole device or an unpaired VF is this host's hardware, with state QEMU cannot carry.
public enum HostDeviceMigration {
    /// Why `profile`'s VM cannot migrate; nil when it can.
    public static func refusal(_ profile: Profile, plugged: [HostDevice] = []) -> String? {
        let fixed = (profile.hostdevs + plugged).filter { $0.failover == nil }
        guard !fixed.isEmpty else { return nil }
        let list = fixed.map { "\($0.id) (\($0.kind))" }.joined(separator: ", ")
        return "\(profile.name) has host devices that cannot move with it: \(list); only a VF paired with a "
            + "virtio-net NIC (hostdevs[].failover) is unplugged for a migration and replaced on the destination"
    }

    /// The same for a VM as it runs: its profile's devices and those plugged since (`corral hostdev add`).
    public static func refusal(_ config: LiveConfig) -> String? {
        refusal(config.profile, plugged: config.hotplugged.hostdevs.map(\.device))
    }
}
