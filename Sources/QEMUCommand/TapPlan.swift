import JSON
import CorralModel
import Profiles

/// The descriptors QEMU gets for one NIC's tap: one per queue, and one `/dev/vhost-net` per queue with vhost.
public struct TapFDs: Sendable, Equatable {
    public var taps: [Int32]
    public var vhosts: [Int32]

    public init(taps: [Int32], vhosts: [Int32] = []) {
        self.taps = taps
        self.vhosts = vhosts
    }
}

/// Pure: which NICs get a tap corral makes (mode `bridge`, and `tap` without an `ifname`), what it is called, how
/// many queues and whether vhost-net, and which descriptor numbers QEMU finds them at. The launcher opens exactly
/// these and places them at these numbers; the argv names the same numbers, so `corral argv` shows what a launch
/// passes. QEMU never creates a tap, runs a helper or a script.
public enum TapPlan {
    public struct Entry: Sendable, Equatable {
        public var nicID: String
        /// The host tap's name (`TapPlan.tapName`).
        public var ifname: String
        /// The bridge to attach it to; nil for a tap attached to nothing (mode `tap`) or a macvtap.
        public var bridge: String?
        /// For a macvtap: its parent interface, mode and MAC (the guest's, so the parent delivers its frames).
        public var macvtap: Macvtap?
        /// For a NIC on a managed network: its name (`bridge` is the network's bridge).
        public var network: String?
        public var queues: Int
        public var vhost: Bool
        /// Where QEMU finds the descriptors.
        public var fds: TapFDs

        public init(nicID: String, ifname: String, bridge: String?, macvtap: Macvtap? = nil, queues: Int, vhost: Bool,
                    fds: TapFDs) {
            self.nicID = nicID
            self.ifname = ifname
            self.bridge = bridge
            self.macvtap = macvtap
            self.queues = queues
            self.vhost = vhost
            self.fds = fds
        }
    }

    public struct Macvtap: Sendable, Equatable {
        public var parent: String
        public var mode: MacvtapMode
        public var mac: String
    }

    /// The first descriptor number handed to QEMU (0–2 are stdin, stdout, stderr).
    public static let firstFD: Int32 = 3
    /// Default queue pairs: the boot vCPU count, at most this.
    public static let defaultMaxQueues = 8

    /// True when corral makes this NIC's tap.
    public static func makesTap(_ nic: NIC) -> Bool {
        nic.mode == .bridge || nic.mode == .macvtap || nic.mode == .network || (nic.mode == .tap && nic.ifname == nil)
    }

    public static func queues(_ nic: NIC, bootCPUs: Int) -> Int {
        guard nic.model == .virtioNet else { return 1 }
        return nic.queues ?? max(1, min(bootCPUs, defaultMaxQueues))
    }

    /// Every tap corral makes for `config` (profile NICs, then hotplugged ones), with descriptor numbers from
    /// `firstFD` on: a NIC's tap queues, then its vhost descriptors, then the next NIC's.
    public static func entries(_ config: LiveConfig, vhostAvailable: Bool, firstFD: Int32 = firstFD) -> [Entry] {
        let profile = config.profile
        var next = firstFD
        var out: [Entry] = []
        for nic in profile.nics + config.hotplugged.nics.map(\.nic) where makesTap(nic) {
            let entry = entry(nic, vmName: profile.name, bootCPUs: profile.cpu.count, vhostAvailable: vhostAvailable,
                              firstFD: next)
            next += Int32(entry.fds.taps.count + entry.fds.vhosts.count)
            out.append(entry)
        }
        return out
    }

    /// One NIC's tap (hotplug makes them one at a time), its descriptors numbered from `firstFD`.
    public static func entry(_ nic: NIC, vmName: String, bootCPUs: Int, vhostAvailable: Bool,
                             firstFD: Int32 = firstFD) -> Entry {
        let queues = queues(nic, bootCPUs: bootCPUs)
        let vhost = nic.model == .virtioNet && (nic.vhost ?? vhostAvailable)
        let taps = (0..<queues).map { firstFD + Int32($0) }
        let vhosts = vhost ? (0..<queues).map { firstFD + Int32(queues + $0) } : []
        var macvtap: Macvtap?
        if nic.mode == .macvtap, let parent = nic.parent {
            macvtap = Macvtap(parent: parent, mode: nic.macvtapMode ?? .bridge,
                              mac: nic.mac ?? DeviceProps.stableMAC(vmName: vmName, nicID: nic.id))
        }
        var bridge = nic.mode == .bridge ? nic.bridge : nil
        var network: String?
        if nic.mode == .network, let name = nic.network {
            bridge = NetworkName.bridge(name)
            network = name
        }
        var entry = Entry(nicID: nic.id, ifname: tapName(vmName: vmName, nicID: nic.id), bridge: bridge,
                          macvtap: macvtap, queues: queues, vhost: vhost, fds: TapFDs(taps: taps, vhosts: vhosts))
        entry.network = network
        return entry
    }

    /// The names a hotplug gives the descriptors it hands QEMU with `getfd` (QMP refers to them by name).
    public static func fdNames(_ entry: Entry) -> (taps: [String], vhosts: [String]) {
        (entry.fds.taps.indices.map { "tap-\(entry.nicID)-\($0)" },
         entry.fds.vhosts.indices.map { "vhost-\(entry.nicID)-\($0)" })
    }

    /// A stable host name for the tap of `nicID` in `vmName`, at most 15 bytes (IFNAMSIZ - 1): `cr`, 8 hex digits of
    /// a hash of both names, `-`, and the start of the NIC id. The same VM and NIC always get the same name (on a
    /// migration destination too); different ones differ unless the hash collides, which the daemon detects
    /// (the name exists) and refuses.
    public static func tapName(vmName: String, nicID: String) -> String {
        let digest = SHA1.hash(Array("corral-tap".utf8) + [0] + Array(vmName.utf8) + [0] + Array(nicID.utf8))
        let hash = digest.prefix(4).map(StableIDs.hexByte).joined()
        let readable = nicID.utf8.prefix(4).map { byte -> Character in
            let c = Character(UnicodeScalar(byte))
            return c.isLetter || c.isNumber ? c : "_"
        }
        return "cr" + hash + "-" + String(readable)
    }

    /// The netdev of a tap corral made at launch: descriptors by number; never a name, a script or a helper.
    public static func netdev(_ nic: NIC, _ entry: Entry) -> JSONObject {
        netdev(nic, taps: entry.fds.taps.map(String.init), vhosts: entry.fds.vhosts.map(String.init))
    }

    /// The netdev with descriptors named by `getfd` (hotplug) or numbered (launch).
    public static func netdev(_ nic: NIC, taps: [String], vhosts: [String]) -> JSONObject {
        var props: JSONObject = ["type": "tap", "id": .string(DeviceProps.netdevID(nic))]
        props[taps.count == 1 ? "fd" : "fds"] = .string(taps.joined(separator: ":"))
        if !vhosts.isEmpty {
            props["vhost"] = true
            props[vhosts.count == 1 ? "vhostfd" : "vhostfds"] = .string(vhosts.joined(separator: ":"))
        }
        return props
    }
}
