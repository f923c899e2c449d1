import CorralModel
import JSON
import Profiles
import QEMUCommand

/// QMP `query-blockstats`, read into one `MetricsSnapshot.Disk` per disk a guest device uses.
public enum BlockStats {
    /// The guest device id of each of `disks` (`DeviceProps.diskDeviceID`) → the disk's id.
    public static func deviceIDs(_ disks: [Disk]) -> [String: String] {
        Dictionary(disks.map { (DeviceProps.diskDeviceID($0), $0.id) }, uniquingKeysWith: { first, _ in first })
    }

    /// Each entry with a guest device (`qdev`): a disk of `disks` (device id → disk id, `deviceIDs`) by its id, any
    /// other block device by its device id. Entries without a device (an NBD export during a migration) are left out.
    public static func disks(fromQueryBlockstats reply: JSONValue, disks: [String: String]) -> [MetricsSnapshot.Disk] {
        (reply.arrayValue ?? []).compactMap { entry in
            guard let qdev = entry["qdev"]?.stringValue, let device = deviceID(qdev: qdev),
                let stats = entry["stats"]
            else { return nil }
            func count(_ key: String) -> UInt64 { UInt64(max(0, stats[key]?.intValue ?? 0)) }
            func seconds(_ key: String) -> Double { Double(max(0, stats[key]?.intValue ?? 0)) / 1e9 }
            return MetricsSnapshot.Disk(
                id: disks[device] ?? device, readBytes: count("rd_bytes"), writtenBytes: count("wr_bytes"),
                readOperations: count("rd_operations"), writeOperations: count("wr_operations"),
                flushOperations: count("flush_operations"), readSeconds: seconds("rd_total_time_ns"),
                writeSeconds: seconds("wr_total_time_ns"), flushSeconds: seconds("flush_total_time_ns"))
        }
    }

    /// The device id in a `qdev` value: QEMU gives either the id itself or the device's QOM path
    /// (`/machine/peripheral/disk-root/virtio-backend` for virtio-blk); nil for a device without an id.
    static func deviceID(qdev: String) -> String? {
        guard qdev.hasPrefix("/") else { return qdev.isEmpty ? nil : qdev }
        let parts = qdev.split(separator: "/")
        guard parts.count >= 3, parts[0] == "machine", parts[1] == "peripheral" else { return nil }
        return String(parts[2])
    }
}
