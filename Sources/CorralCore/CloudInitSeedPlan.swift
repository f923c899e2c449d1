import Profiles
import QEMUCommand

/// What goes on a VM's cloud-init NoCloud seed (pure): `user-data`, `meta-data`, and `network-config` when given.
/// The daemon reads the profile's files, asks for the seed, and writes it onto a volume labelled `cidata`.
public enum CloudInitSeedPlan {
    /// The documents' text: inline ones from the profile, files as the daemon read them.
    public struct Documents: Sendable, Equatable {
        public var userData: String?
        public var metaData: String?
        public var networkConfig: String?

        public init(userData: String? = nil, metaData: String? = nil, networkConfig: String? = nil) {
            self.userData = userData
            self.metaData = metaData
            self.networkConfig = networkConfig
        }
    }

    public struct Seed: Sendable, Equatable {
        /// `corral-` and 16 hex digits of a digest of everything on the seed: the same for the same content, so
        /// cloud-init runs once per VM; any change (user-data, keys, hostname…) makes cloud-init provision again.
        public var instanceID: String
        /// File name → content, in the order they are written.
        public var files: [(name: String, content: String)]

        public static func == (a: Seed, b: Seed) -> Bool {
            a.instanceID == b.instanceID && a.files.map(\.name) == b.files.map(\.name)
                && a.files.map(\.content) == b.files.map(\.content)
        }
    }

    public static func seed(_ cloudInit: CloudInit, vmName: String, documents: Documents) -> Seed {
        let hostname = cloudInit.hostname ?? vmName
        let userData = documents.userData ?? "#cloud-config\n"
        var identity = [vmName, hostname, userData, documents.metaData ?? "", documents.networkConfig ?? ""]
        identity += cloudInit.sshKeys
        let digest = ContentDigest.sha1Hex(Array(identity.joined(separator: "\u{0}").utf8))
        let instanceID = "corral-" + String(digest.prefix(16))
        var meta = "instance-id: \(instanceID)\nlocal-hostname: \(hostname)\n"
        if !cloudInit.sshKeys.isEmpty {
            meta += "public-keys:\n" + cloudInit.sshKeys.map { "  - " + quoted($0) + "\n" }.joined()
        }
        if let extra = documents.metaData {
            meta += extra.hasSuffix("\n") ? extra : extra + "\n"
        }
        var files: [(String, String)] = [("user-data", userData), ("meta-data", meta)]
        if let network = documents.networkConfig { files.append(("network-config", network)) }
        return Seed(instanceID: instanceID, files: files)
    }

    /// A YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for c in text.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
