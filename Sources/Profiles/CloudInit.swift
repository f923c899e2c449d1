/// cloud-init's NoCloud data for the guest (`cloudInit:` in a profile). corral writes `user-data`, `meta-data` (with
/// an `instance-id` that changes exactly when the content does, the hostname and the SSH keys) and, when given,
/// `network-config` onto a small volume labelled `cidata`, attached read-only.
public struct CloudInit: Sendable, Equatable, Codable {
    /// `local-hostname`; nil: the VM's name.
    public var hostname: String?
    public var userData: CloudInitSource?
    /// Extra meta-data keys (corral adds `instance-id`, `local-hostname` and `public-keys` unless given here).
    public var metaData: CloudInitSource?
    /// Network configuration (version 1 or 2); nil: cloud-init's default (DHCP on the first NIC).
    public var networkConfig: CloudInitSource?
    /// SSH public keys for the default user (`public-keys` in meta-data).
    public var sshKeys: [String]

    public init(hostname: String? = nil, userData: CloudInitSource? = nil, metaData: CloudInitSource? = nil,
                networkConfig: CloudInitSource? = nil, sshKeys: [String] = []) {
        self.hostname = hostname
        self.userData = userData
        self.metaData = metaData
        self.networkConfig = networkConfig
        self.sshKeys = sshKeys
    }

    /// The reserved id of the seed volume among the VM's disks.
    public static let seedDiskID = "cidata"
}

/// A cloud-init document written in the profile, or a file the daemon reads when it builds the seed.
public enum CloudInitSource: Sendable, Equatable, Codable {
    case inline(String)
    /// An absolute path (the loader resolves relative ones against the profile's folder).
    case file(String)

    /// The profile's text: content when it spans lines or starts with `#` (`#cloud-config`, `#!/bin/sh`), else a
    /// file path.
    public static func classify(_ text: String) -> Kind {
        text.hasPrefix("#") || text.contains("\n") ? .inline : .path
    }

    public enum Kind { case inline, path }
}
