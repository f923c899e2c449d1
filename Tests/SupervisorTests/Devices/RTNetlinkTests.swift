import Testing
@testable import HostDevices
@testable import Supervisor
#if canImport(Glibc)
import Glibc
#endif

/// rtnetlink messages for VF settings, byte for byte (netlink is host byte order: these buffers are little-endian, as
/// on x86-64 and arm64 Linux), and one real RTM_GETLINK.
struct RTNetlinkTests {
    static func le32(_ value: UInt32) -> [UInt8] { [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: value >> $0) } }
    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var bytes = le16(UInt16(4 + payload.count)) + le16(type) + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    @Test func getLinkAsksByNameWithTheVFFilter() {
        #expect(RTNetlink.getLinkRequest(name: "eth0", sequence: 7) == [
            0x34, 0, 0, 0, 0x12, 0, 0x01, 0, 7, 0, 0, 0, 0, 0, 0, 0,          // nlmsghdr: 52 bytes, RTM_GETLINK, REQUEST
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                    // ifinfomsg: any family, index 0
            9, 0, 3, 0, 0x65, 0x74, 0x68, 0x30, 0, 0, 0, 0,                    // IFLA_IFNAME "eth0\0" + padding
            8, 0, 0x1d, 0, 1, 0, 0, 0,                                         // IFLA_EXT_MASK RTEXT_FILTER_VF
        ])
    }

    @Test func setVFNestsMacVlanTrustAndSpoofCheck() throws {
        let settings = VFSettings(mac: "52:54:00:12:34:56", vlan: 100, trust: true, spoofCheck: false)
        let bytes = try RTNetlink.setVFRequest(name: "eth0", vf: 3, settings: settings, sequence: 9)
        let expected: [UInt8] = [
            0x84, 0, 0, 0, 0x13, 0, 0x05, 0, 9, 0, 0, 0, 0, 0, 0, 0,           // 132 bytes, RTM_SETLINK, REQUEST|ACK
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            9, 0, 3, 0, 0x65, 0x74, 0x68, 0x30, 0, 0, 0, 0,
            0x58, 0, 0x16, 0,                                                  // IFLA_VFINFO_LIST, 88 bytes
            0x54, 0, 0x01, 0,                                                  //   IFLA_VF_INFO, 84 bytes
            0x28, 0, 0x01, 0, 3, 0, 0, 0, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,  //     IFLA_VF_MAC: vf 3, mac[32]
        ] + [UInt8](repeating: 0, count: 26) + [
            0x10, 0, 0x02, 0, 3, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0,            //     IFLA_VF_VLAN: vf, vlan 100, qos 0
            0x0c, 0, 0x09, 0, 3, 0, 0, 0, 1, 0, 0, 0,                          //     IFLA_VF_TRUST on
            0x0c, 0, 0x04, 0, 3, 0, 0, 0, 0, 0, 0, 0,                          //     IFLA_VF_SPOOFCHK off
        ]
        #expect(bytes == expected)
        // Only what is set is sent.
        #expect(try RTNetlink.setVFRequest(name: "eth0", vf: 0, settings: VFSettings(trust: false), sequence: 1).count
            == 16 + 16 + 12 + 4 + 4 + 12)
        #expect(throws: NetlinkError.invalidMAC("52:54:00")) {
            try RTNetlink.setVFRequest(name: "eth0", vf: 0, settings: VFSettings(mac: "52:54:00"), sequence: 1)
        }
    }

    @Test func aNewLinkReplyGivesIndexNameAndEachVF() throws {
        func vfInfo(_ vf: UInt32, mac: [UInt8], vlan: UInt32, qos: UInt32, spoof: UInt32, trust: UInt32) -> [UInt8] {
            Self.attribute(1, Self.attribute(1, Self.le32(vf) + mac + [UInt8](repeating: 0, count: 32 - mac.count))
                + Self.attribute(2, Self.le32(vf) + Self.le32(vlan) + Self.le32(qos))
                + Self.attribute(3, Self.le32(vf) + Self.le32(0))                   // IFLA_VF_TX_RATE: ignored
                + Self.attribute(4, Self.le32(vf) + Self.le32(spoof))
                + Self.attribute(9, Self.le32(vf) + Self.le32(trust)))
        }
        let body: [UInt8] = [0, 0] + Self.le16(1) + Self.le32(4) + Self.le32(0x1003) + Self.le32(0)
            + Self.attribute(3, Array("eth0".utf8) + [0])
            + Self.attribute(4, Self.le32(1500))
            + Self.attribute(22, vfInfo(0, mac: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01], vlan: 10, qos: 2, spoof: 1,
                                        trust: 0xffff_ffff)
                                  + vfInfo(1, mac: [0, 0, 0, 0, 0, 0], vlan: 0, qos: 0, spoof: 0, trust: 1))
        let other = Self.le32(16) + Self.le16(3) + Self.le16(2) + Self.le32(99) + Self.le32(0)   // NLMSG_DONE of seq 99
        let message = Self.le32(UInt32(16 + body.count)) + Self.le16(16) + Self.le16(0) + Self.le32(7) + Self.le32(0) + body
        let replies = try RTNetlink.parse(other + message, sequence: 7)
        #expect(replies == [.link(LinkMessage(index: 4, name: "eth0", vfs: [
            0: VFSettings(mac: "aa:bb:cc:dd:ee:01", vlan: 10, qos: 2, trust: nil, spoofCheck: true),
            1: VFSettings(mac: "00:00:00:00:00:00", vlan: 0, qos: 0, trust: true, spoofCheck: false),
        ]))])
    }

    @Test func errorsAndAcksAndTruncationsParse() throws {
        let request = Self.le32(32) + Self.le16(19) + Self.le16(5) + Self.le32(9) + Self.le32(0)
        func error(_ code: Int32) -> [UInt8] {
            Self.le32(36) + Self.le16(2) + Self.le16(0) + Self.le32(9) + Self.le32(0) + Self.le32(UInt32(bitPattern: code))
                + request
        }
        #expect(try RTNetlink.parse(error(-19), sequence: 9) == [.error(19)])
        #expect(try RTNetlink.parse(error(0), sequence: 9) == [.ack])
        #expect(try RTNetlink.parse(error(0), sequence: 10) == [])
        #expect(throws: NetlinkError.malformed("message length 36 at offset 0 of 30 bytes")) {
            try RTNetlink.parse(Array(error(0).prefix(30)), sequence: 9)
        }
    }

    /// The real kernel: this host has no SR-IOV device, so only `lo`'s index and name are checked (no VFs).
    @Test func theKernelDescribesLoopback() throws {
        let link = try RTNetlinkSocket.link(named: "lo")
        #expect(link.name == "lo")
        #expect(link.index == Int32(if_nametoindex("lo")))
        #expect(link.vfs.isEmpty)
        #expect(throws: NetlinkError.kernel(request: "RTM_GETLINK no-such-link0", errno: ENODEV)) {
            try RTNetlinkSocket.link(named: "no-such-link0")
        }
    }
}
