import QEMUCommand

/// One line of a device cgroup's allow list: character or block devices, a major and minor number (nil: any), and
/// the access (`r` read, `w` write, `m` mknod). The text is cgroup v1's `devices.allow` syntax.
public struct DeviceRule: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case character = "c", block = "b" }

    public var kind: Kind
    public var major: UInt32?
    public var minor: UInt32?
    public var access: String
    /// What the device is, for `status` and the docs.
    public var name: String

    public init(_ kind: Kind, _ major: UInt32?, _ minor: UInt32?, _ access: String, name: String) {
        self.kind = kind
        self.major = major
        self.minor = minor
        self.access = access
        self.name = name
    }

    /// `c 1:3 rw`, `c 136:* rw`.
    public var line: String {
        "\(kind.rawValue) \(major.map(String.init) ?? "*"):\(minor.map(String.init) ?? "*") \(access)"
    }

    public var description: String { "\(line) (\(name))" }
}

/// The device nodes a confined QEMU may open: everything else it gets as a descriptor from the daemon (taps,
/// `/dev/vhost-net`, disks, sockets), so a QEMU taken over by its guest cannot open a host disk or another device
/// node even where the file's mode would let its uid.
public enum DeviceRules {
    /// The always-harmless nodes (null, zero, full, random, urandom), plus `/dev/kvm` under KVM. Nothing may be
    /// created (no `m`).
    public static func allowed(accel: ResolvedAccel) -> [DeviceRule] {
        var rules = [
            DeviceRule(.character, 1, 3, "rw", name: "/dev/null"),
            DeviceRule(.character, 1, 5, "rw", name: "/dev/zero"),
            DeviceRule(.character, 1, 7, "rw", name: "/dev/full"),
            DeviceRule(.character, 1, 8, "rw", name: "/dev/random"),
            DeviceRule(.character, 1, 9, "rw", name: "/dev/urandom"),
        ]
        if accel == .kvm { rules.append(DeviceRule(.character, 10, 232, "rw", name: "/dev/kvm")) }
        return rules
    }
}
