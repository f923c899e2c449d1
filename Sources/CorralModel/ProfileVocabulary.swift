// The profile's enumerations that also cross the wire (up, disk add, nic add). Profiles decodes them from
// YAML; requests and statuses carry them as their raw strings.

public enum Accel: String, Sendable, Codable, CaseIterable {
    case kvm, tcg, auto
}

public enum DiskFormat: String, Sendable, Codable, CaseIterable {
    case qcow2, raw
}

public enum DiskBus: String, Sendable, Codable, CaseIterable {
    case virtioBlk = "virtio-blk"
    case virtioSCSI = "virtio-scsi"
    case nvme
}

public enum NICMode: String, Sendable, Codable, CaseIterable {
    case user, tap, bridge
    /// libvirt's `type='direct'`: a macvtap on a host interface (`parent`), made by the daemon.
    case macvtap
    /// On a managed network (`network: NAME`, `corral network create`): a tap on the network's bridge.
    case network
}

/// How a macvtap shares its parent (the kernel's macvlan modes).
public enum MacvtapMode: String, Sendable, Codable, CaseIterable {
    /// Guests on the same parent reach each other directly, and the network.
    case bridge
    /// Everything goes out to the adjacent switch (reflective relay for guest-to-guest).
    case vepa
    /// Guests on the same parent never reach each other.
    case `private`
    /// One guest owns the parent.
    case passthrough = "passthru"
}

public enum NICModel: String, Sendable, Codable, CaseIterable {
    case virtioNet = "virtio-net"
    case e1000e
}

/// The guest's video device (`display.vga`).
public enum VideoModel: String, Sendable, Codable, CaseIterable {
    /// QEMU's standard VGA (`VGA`): every OS drives it.
    case std
    /// `virtio-vga`: virtio-gpu with a VGA-compatible mode for firmware and early boot.
    case virtio
    /// `bochs-display`: a linear framebuffer without legacy VGA.
    case bochs
    /// No video device.
    case none
}
