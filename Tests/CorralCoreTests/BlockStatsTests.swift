import CorralCore
import CorralModel
import JSON
import Profiles
import Testing

/// `query-blockstats` as QEMU 7.2 answers it, read into disks by their ids.
@Suite struct BlockStatsTests {
    static func entry(qdev: String?, node: String, read: Int64) -> JSONValue {
        var object: JSONObject = [
            "device": "", "node-name": .string(node),
            "stats": ["rd_bytes": .int(read), "wr_bytes": 2048, "rd_operations": 3, "wr_operations": 4,
                      "flush_operations": 5, "rd_total_time_ns": 1_500_000_000, "wr_total_time_ns": 250_000_000,
                      "flush_total_time_ns": 0, "idle_time_ns": 123],
        ]
        if let qdev { object["qdev"] = .string(qdev) }
        return .object(object)
    }

    @Test func eachDiskIsFoundByItsDeviceWhicheverWayQEMUNamesIt() {
        let reply: JSONValue = .array([
            Self.entry(qdev: "/machine/peripheral/disk-root/virtio-backend", node: "fmt-root", read: 1000),  // virtio-blk
            Self.entry(qdev: "disk-fast", node: "fmt-fast", read: 2000),  // nvme, scsi-hd: the id itself
            Self.entry(qdev: "/machine/peripheral/disk-cidata/virtio-backend", node: "fmt-cidata", read: 3000),
            Self.entry(qdev: "/machine/peripheral/other0/virtio-backend", node: "x", read: 4000),  // not corral's
            Self.entry(qdev: nil, node: "nbd-export", read: 5000),  // no guest device
            Self.entry(qdev: "/machine/peripheral-anon/device[3]/virtio-backend", node: "y", read: 6000),  // no id
        ])
        let disks = BlockStats.deviceIDs([Disk(id: "root", file: "/r.qcow2"), Disk(id: "fast", file: "/f.qcow2"),
                                          Disk(id: CloudInit.seedDiskID, file: "")])
        let read = BlockStats.disks(fromQueryBlockstats: reply, disks: disks)
        #expect(read.map(\.id) == ["root", "fast", "cidata", "other0"])
        #expect(read.map(\.readBytes) == [1000, 2000, 3000, 4000])
        #expect(read.first == MetricsSnapshot.Disk(
            id: "root", readBytes: 1000, writtenBytes: 2048, readOperations: 3, writeOperations: 4, flushOperations: 5,
            readSeconds: 1.5, writeSeconds: 0.25, flushSeconds: 0))
    }

    @Test func aReplyThatIsNotAListReadsAsNoDisks() {
        #expect(BlockStats.disks(fromQueryBlockstats: ["oops": 1], disks: [:]) == [])
        #expect(BlockStats.disks(fromQueryBlockstats: [["qdev": "disk-a"]], disks: [:]) == [])
    }
}
