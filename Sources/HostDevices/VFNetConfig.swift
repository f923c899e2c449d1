#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Reads and sets a VF's MAC, VLAN, trust and spoof checking on its PF's interface (what `ip link set PF vf N`
/// does). The daemon reads the settings before a VM gets the VF and puts them back afterwards.
public protocol VFNetConfig: Sendable {
    /// VF `vf`'s current settings on `pf` (the PF's interface name).
    func settings(pf: String, vf: Int) throws(NetlinkError) -> VFSettings
    /// Sets the non-nil fields of `settings` on VF `vf` of `pf`.
    func apply(_ settings: VFSettings, pf: String, vf: Int) throws(NetlinkError)
}

/// `VFNetConfig` over rtnetlink: RTM_GETLINK with RTEXT_FILTER_VF, RTM_SETLINK with IFLA_VFINFO_LIST.
public struct RTNetlinkVFNetConfig: VFNetConfig {
    public init() {}

    public func settings(pf: String, vf: Int) throws(NetlinkError) -> VFSettings {
        let link = try RTNetlinkSocket.link(named: pf)
        guard let settings = link.vfs[vf] else { throw .noSuchVF(netdev: pf, vf: vf) }
        return settings
    }

    public func apply(_ settings: VFSettings, pf: String, vf: Int) throws(NetlinkError) {
        let sequence = RTNetlinkSocket.nextSequence()
        let request = try RTNetlink.setVFRequest(name: pf, vf: vf, settings: settings, sequence: sequence)
        let replies = try RTNetlinkSocket.exchange(request, sequence: sequence)
        for reply in replies {
            if case .error(let errno) = reply { throw .kernel(request: "RTM_SETLINK \(pf) vf \(vf)", errno: errno) }
            if case .ack = reply { return }
        }
        throw .malformed("no acknowledgement of RTM_SETLINK \(pf) vf \(vf)")
    }
}

/// One request, one answer, over a fresh NETLINK_ROUTE socket (no bind: the kernel gives it a port on the first
/// send; an unaddressed send goes to the kernel).
public enum RTNetlinkSocket {
    private static let counter = Atomic<UInt32>(0)

    /// A request number not used before by this process.
    static func nextSequence() -> UInt32 { counter.wrappingAdd(1, ordering: .relaxed).newValue }

    /// The link `name` as RTM_GETLINK reports it, VFs included.
    public static func link(named name: String) throws(NetlinkError) -> LinkMessage {
        let sequence = nextSequence()
        for reply in try exchange(RTNetlink.getLinkRequest(name: name, sequence: sequence), sequence: sequence) {
            switch reply {
            case .link(let link): return link
            case .error(let errno): throw .kernel(request: "RTM_GETLINK \(name)", errno: errno)
            case .ack: continue
            }
        }
        throw .malformed("no RTM_NEWLINK answering RTM_GETLINK \(name)")
    }

    /// Sends `request` and reads datagrams until one holds a reply numbered `sequence` (5 s at most).
    static func exchange(_ request: [UInt8], sequence: UInt32) throws(NetlinkError) -> [RTNetlink.Reply] {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw .socket(operation: "socket", errno: errno) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { throw .socket(operation: "send", errno: sent < 0 ? errno : EIO) }
        // A PF with many VFs answers with a long message: 64 KiB holds well over a hundred VFs.
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .socket(operation: "recv", errno: n < 0 ? errno : EPIPE) }
            let replies = try RTNetlink.parse(Array(buffer[0..<n]), sequence: sequence)
            if !replies.isEmpty { return replies }
        }
    }
}

extension VFSettings {
    /// The part of `self` (settings read before a change) that `change` overwrites: applying it undoes `change`.
    public func undoing(_ change: VFSettings) -> VFSettings {
        VFSettings(mac: change.mac == nil ? nil : mac, vlan: change.vlan == nil ? nil : vlan,
                   qos: change.vlan == nil ? nil : qos, trust: change.trust == nil ? nil : trust,
                   spoofCheck: change.spoofCheck == nil ? nil : spoofCheck)
    }
}

extension VFNetConfig {
    /// Reads VF `vf`'s settings, applies `settings`, and returns what applying undoes it (persist it with the VF's
    /// bind record and `apply` it when the VM lets the VF go).
    public func replace(_ settings: VFSettings, pf: String, vf: Int) throws(NetlinkError) -> VFSettings {
        let before = try self.settings(pf: pf, vf: vf)
        try apply(settings, pf: pf, vf: vf)
        return before.undoing(settings)
    }
}
