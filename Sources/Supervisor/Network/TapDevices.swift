import CorralModel
import CSupport
import Foundation
import Profiles
import QEMUCommand

/// Taps corral makes for a QEMU (`TapPlan`), open: our descriptors, by the number QEMU finds each at.
///
/// The taps are not persistent: a tap lives while a descriptor to it is open. QEMU gets them; the daemon closes its
/// own copies right after the spawn (`closeAll`). So a tap is gone exactly when its QEMU is (stop, kill, a crash, a
/// failed start), survives a daemon restart (QEMU still holds it), and a migration destination makes its own
/// before its QEMU starts. Nothing is left for anyone to clean up.
public struct OpenedTaps: Sendable {
    /// QEMU's descriptor number → ours.
    public private(set) var descriptors: [Int32: Int32] = [:]
    public private(set) var names: [String] = []
    /// macvtaps made for this QEMU: unlike taps they outlive every descriptor, so they are deleted explicitly
    /// (`TapDevices.remove`) when the QEMU is gone or the start failed.
    public private(set) var macvtaps: [String] = []

    public init() {}

    /// Closes our copies (QEMU keeps its own).
    public func closeAll() {
        for fd in descriptors.values { close(fd) }
    }

    mutating func madeMacvtap(_ name: String) { macvtaps.append(name) }

    mutating func add(_ fd: Int32, at number: Int32) { descriptors[number] = fd }
    mutating func named(_ name: String) { names.append(name) }
}

/// Why a tap could not be made: which NIC, what is wrong, what to do.
public struct TapError: Error, Sendable, Equatable, CustomStringConvertible {
    public var nicID: String
    public var message: String
    public var description: String { "nics \(nicID): \(message)" }
}

/// Makes taps with ioctls on /dev/net/tun and a control socket: TUNSETIFF creates and opens the tap, SIOCBRADDIF
/// attaches it to its bridge, SIOCSIFMTU copies the bridge's MTU, SIOCSIFFLAGS brings it up. No netlink library and
/// no `ip` process: five syscalls per tap, nothing to parse, and nothing spawned (QEMU itself is sandboxed with
/// spawn=deny; the daemon does not need to spawn either).
public enum TapDevices {
    /// Opens every tap of `entries`; on any failure closes what it opened (so those taps are gone) and throws.
    public static func open(_ entries: [TapPlan.Entry], vhostDevice: String = "/dev/vhost-net")
        throws(TapError) -> OpenedTaps
    {
        var opened = OpenedTaps()
        do {
            for entry in entries { try open(entry, into: &opened, vhostDevice: vhostDevice) }
        } catch {
            opened.closeAll()
            remove(opened.macvtaps)
            throw error
        }
        return opened
    }

    /// Deletes the macvtaps among `entries` (those of a QEMU that is gone). Taps need nothing: they went with
    /// their last descriptor.
    public static func removeMacvtaps(of entries: [TapPlan.Entry]) {
        remove(entries.filter { $0.macvtap != nil }.map(\.ifname))
    }

    static func remove(_ links: [String]) {
        for link in links { _ = corral_link_delete(link) }
    }

    /// The kernel's macvlan mode numbers (linux/if_link.h).
    static func modeNumber(_ mode: MacvtapMode) -> UInt32 {
        switch mode {
        case .private: return 1
        case .vepa: return 2
        case .bridge: return 4
        case .passthrough: return 8
        }
    }

    /// `52:54:00:12:34:56` → six bytes.
    static func macBytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        return parts.count == 6 ? parts : nil
    }

    /// Makes the macvtap over rtnetlink, brings it up, and opens its character device once per queue.
    private static func openMacvtap(_ entry: TapPlan.Entry, _ macvtap: TapPlan.Macvtap, into opened: inout OpenedTaps)
        throws(TapError)
    {
        func fail(_ message: String) -> TapError { TapError(nicID: entry.nicID, message: message) }
        func text(_ code: Int32) -> String { String(cString: strerror(-code)) }
        guard corral_if_index(macvtap.parent) > 0 else {
            throw fail("parent '\(macvtap.parent)' does not exist on this host (nics[].parent names the host "
                + "interface the macvtap sits on)")
        }
        guard let mac = macBytes(macvtap.mac) else { throw fail("'\(macvtap.mac)' is not a MAC address") }
        let made = mac.withUnsafeBufferPointer {
            corral_macvtap_create(entry.ifname, macvtap.parent, $0.baseAddress, modeNumber(macvtap.mode))
        }
        guard made == 0 else {
            throw fail("cannot create macvtap \(entry.ifname) on \(macvtap.parent): \(text(made))")
        }
        opened.madeMacvtap(entry.ifname)
        opened.named(entry.ifname)
        let up = corral_if_up(entry.ifname)
        guard up == 0 else { throw fail("cannot bring \(entry.ifname) up: \(text(up))") }
        let index = corral_if_index(entry.ifname)
        let device = "/dev/tap\(index)"
        try makeDeviceNode(device, for: entry.ifname, index: index, fail: fail)
        for number in entry.fds.taps {
            let fd = Glibc.open(device, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw fail("cannot open \(device): \(String(cString: strerror(errno)))") }
            opened.add(fd, at: number)
        }
    }

    /// `/dev/tapN` usually appears on its own (devtmpfs, udev); where nothing makes it (a container), it is made
    /// here from the numbers sysfs gives.
    private static func makeDeviceNode(_ device: String, for name: String, index: Int32,
                                       fail: (String) -> TapError) throws(TapError) {
        if FileManager.default.fileExists(atPath: device) { return }
        let numbers = (try? String(contentsOfFile: "/sys/class/net/\(name)/macvtap/tap\(index)/dev", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").compactMap { UInt32($0) } ?? []
        guard numbers.count == 2 else { throw fail("\(device) does not exist and sysfs does not say its numbers") }
        let made = corral_mknod_char(device, numbers[0], numbers[1])
        guard made == 0 || made == -EEXIST else {
            throw fail("cannot make \(device): \(String(cString: strerror(-made)))")
        }
    }

    private static func open(_ entry: TapPlan.Entry, into opened: inout OpenedTaps, vhostDevice: String)
        throws(TapError)
    {
        func fail(_ message: String) -> TapError { TapError(nicID: entry.nicID, message: message) }
        func text(_ code: Int32) -> String { String(cString: strerror(-code)) }
        if let macvtap = entry.macvtap {
            guard corral_if_index(entry.ifname) < 0 else {
                throw fail("the interface name \(entry.ifname) is already in use on this host")
            }
            try openMacvtap(entry, macvtap, into: &opened)
            try openVhosts(entry, into: &opened, vhostDevice: vhostDevice)
            return
        }
        if let network = entry.network, let bridge = entry.bridge, corral_if_index(bridge) <= 0 {
            throw fail("network '\(network)' does not exist on this host (corral network ls; "
                + "corral network create \(network) --subnet …)")
        }
        if let bridge = entry.bridge {
            guard corral_if_index(bridge) > 0 else {
                throw fail("bridge '\(bridge)' does not exist on this host (create it first, e.g. "
                    + "`ip link add \(bridge) type bridge && ip link set \(bridge) up`)")
            }
            guard corral_is_bridge(bridge) == 1 else {
                throw fail("'\(bridge)' is not a bridge (use mode macvtap for a physical interface)")
            }
        }
        guard corral_if_index(entry.ifname) < 0 else {
            throw fail("the tap name \(entry.ifname) is already in use on this host (is this VM's QEMU already "
                + "running, or another VM's NIC hashing to the same name?)")
        }
        for number in entry.fds.taps {
            let fd = corral_tap_open(entry.ifname, 1, entry.queues > 1 ? 1 : 0)
            guard fd >= 0 else { throw fail("cannot create tap \(entry.ifname): \(text(fd))") }
            opened.add(fd, at: number)
        }
        opened.named(entry.ifname)
        if let bridge = entry.bridge {
            let mtu = corral_if_mtu(bridge)
            if mtu > 0 {
                let set = corral_if_set_mtu(entry.ifname, mtu)
                guard set == 0 else { throw fail("cannot set the MTU of \(entry.ifname) to \(mtu): \(text(set))") }
            }
            let index = corral_if_index(entry.ifname)
            let added = index > 0 ? corral_bridge_add(bridge, index) : index
            guard added == 0 else { throw fail("cannot attach \(entry.ifname) to bridge \(bridge): \(text(added))") }
        }
        let up = corral_if_up(entry.ifname)
        guard up == 0 else { throw fail("cannot bring \(entry.ifname) up: \(text(up))") }
        try openVhosts(entry, into: &opened, vhostDevice: vhostDevice)
    }

    private static func openVhosts(_ entry: TapPlan.Entry, into opened: inout OpenedTaps, vhostDevice: String)
        throws(TapError)
    {
        func fail(_ message: String) -> TapError { TapError(nicID: entry.nicID, message: message) }
        for number in entry.fds.vhosts {
            let fd = Glibc.open(vhostDevice, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else {
                throw fail("vhost: cannot open \(vhostDevice): \(String(cString: strerror(errno))) "
                    + "(set vhost: false on the NIC to go without)")
            }
            opened.add(fd, at: number)
        }
    }
}
