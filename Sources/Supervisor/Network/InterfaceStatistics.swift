import CorralModel
import HostDevices

/// A host interface's counters from `/sys/class/net/IFNAME/statistics` (under `root`: "" for the real host, a
/// folder in tests).
public enum InterfaceStatistics {
    /// The traffic of a guest NIC behind host interface `ifname`, from the guest's side. A tap's counters are the
    /// host's side of the wire (a frame QEMU writes for the guest is one the tap receives), so they are swapped; a
    /// macvtap counts from the guest's side already (what it receives from its parent goes to the guest). nil when
    /// the interface cannot be read.
    public static func guestTraffic(ifname: String, macvtap: Bool, root: String = "") -> MetricsSnapshot.Traffic? {
        let folder = root + "/sys/class/net/" + ifname + "/statistics/"
        func read(_ name: String) throws(KernelFileError) -> UInt64 {
            UInt64(max(0, try KernelFiles.readInt(folder + name)))
        }
        do {
            let rx = (bytes: try read("rx_bytes"), packets: try read("rx_packets"))
            let tx = (bytes: try read("tx_bytes"), packets: try read("tx_packets"))
            let (received, sent) = macvtap ? (rx, tx) : (tx, rx)
            return MetricsSnapshot.Traffic(receivedBytes: received.bytes, receivedPackets: received.packets,
                                           transmittedBytes: sent.bytes, transmittedPackets: sent.packets)
        } catch {
            return nil
        }
    }
}
