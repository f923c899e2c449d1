import CorralModel

/// `cloudInit:` checks (docs/provisioning.md). The documents' own syntax is cloud-init's to judge; corral checks what
/// would make the seed unusable or the guest ignore it.
extension ProfileChecker {
    /// The first line cloud-init recognises user-data by.
    static let userDataStarts = ["#cloud-config", "#!", "#include", "#cloud-boothook", "#part-handler",
                                 "## template:", "Content-Type:"]
    /// Each inline document, and each file the daemon reads, is at most this big.
    static let maxCloudInitDocument = 1 << 20
    static let maxSSHKeys = 64

    mutating func validateCloudInit(_ profile: Profile, source: any ProfileSource, checkFiles: Bool) {
        guard let cloudInit = profile.cloudInit, usable("cloudInit") else { return }
        if let hostname = cloudInit.hostname, usable("cloudInit.hostname"), !Self.isHostname(hostname) {
            problem("cloudInit.hostname", "'\(hostname)' is not a host name (letters, digits and '-' in dot-separated "
                + "labels of at most 63 characters, 253 in all, no label starting or ending with '-')")
        }
        for (key, document) in [("userData", cloudInit.userData), ("metaData", cloudInit.metaData),
                                ("networkConfig", cloudInit.networkConfig)] {
            let path = "cloudInit." + key
            guard let document, usable(path) else { continue }
            switch document {
            case .inline(let text):
                if text.utf8.count > Self.maxCloudInitDocument {
                    problem(path, "is \(text.utf8.count) bytes; at most \(Self.maxCloudInitDocument) (1 MiB)")
                } else if key == "userData", !Self.userDataStarts.contains(where: { text.hasPrefix($0) }) {
                    problem(path, "cloud-init ignores user-data that does not start with one of "
                        + Self.userDataStarts.joined(separator: ", "))
                }
            case .file(let file):
                if file.utf8.contains(0) {
                    problem(path, "must not contain a NUL byte")
                } else if checkFiles, !source.exists(file) {
                    problem(path, "\(file) does not exist (a value that spans lines or starts with '#' is the document "
                        + "itself; anything else is a file path)")
                }
            }
        }
        if cloudInit.sshKeys.count > Self.maxSSHKeys {
            problem("cloudInit.sshKeys", "\(cloudInit.sshKeys.count) keys is more than \(Self.maxSSHKeys)")
        }
        for (index, key) in cloudInit.sshKeys.enumerated() where usable("cloudInit.sshKeys[\(index)]") {
            let path = "cloudInit.sshKeys[\(index)]"
            let kinds = ["ssh-", "ecdsa-sha2-", "sk-"]
            if key.contains("\n") || key.contains("\r") {
                problem(path, "must be one line (one public key per entry)")
            } else if !kinds.contains(where: { key.hasPrefix($0) }) || key.split(separator: " ").count < 2 {
                problem(path, "is not an SSH public key ('ssh-ed25519 AAAA… comment', 'ssh-rsa …', 'ecdsa-sha2-…')")
            }
        }
        for (index, disk) in profile.disks.enumerated() where disk.id == CloudInit.seedDiskID {
            problem("disks[\(index)].id", "'\(CloudInit.seedDiskID)' is the cloud-init seed's id; choose another")
        }
    }

    static func isHostname(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-" else { return false }
            return label.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a)
                || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d }
        }
    }
}
