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
}

public enum NICModel: String, Sendable, Codable, CaseIterable {
    case virtioNet = "virtio-net"
    case e1000e
}
