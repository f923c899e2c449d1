import CorralModel
#if canImport(Glibc)
import Glibc
#endif

/// A VF's network settings on its PF, as rtnetlink reports and sets them (`ip link set PF vf N ...`). A nil field is
/// one the driver does not report, or one `apply` leaves alone.
public struct VFSettings: Sendable, Codable, Equatable {
    /// `xx:xx:xx:xx:xx:xx`, lower case; `00:00:00:00:00:00` when none was set.
    public var mac: String?
    /// VLAN id (0: none) and 802.1p priority.
    public var vlan: UInt16?
    public var qos: UInt8?
    public var trust: Bool?
    public var spoofCheck: Bool?

    public init(mac: String? = nil, vlan: UInt16? = nil, qos: UInt8? = nil, trust: Bool? = nil, spoofCheck: Bool? = nil) {
        self.mac = mac
        self.vlan = vlan
        self.qos = qos
        self.trust = trust
        self.spoofCheck = spoofCheck
    }
}

/// What went wrong talking rtnetlink.
public enum NetlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    /// socket/send/recv failed.
    case socket(operation: String, errno: Int32)
    /// The kernel refused `request` (its negative errno, made positive).
    case kernel(request: String, errno: Int32)
    /// A reply that does not parse.
    case malformed(String)
    case invalidMAC(String)
    /// The PF reports no VF with that number.
    case noSuchVF(netdev: String, vf: Int)

    public var description: String {
        switch self {
        case .socket(let operation, let errno): return "netlink \(operation): \(String(cString: strerror(errno)))"
        case .kernel(let request, let errno): return "\(request): \(String(cString: strerror(errno)))"
        case .malformed(let reason): return "malformed netlink reply: \(reason)"
        case .invalidMAC(let mac): return "'\(mac)' is not a MAC address like 52:54:00:12:34:56"
        case .noSuchVF(let netdev, let vf): return "\(netdev) has no VF \(vf) (see `ip link show \(netdev)`)"
        }
    }
}

/// One link as RTM_NEWLINK describes it.
public struct LinkMessage: Sendable, Equatable {
    public var index: Int32
    public var name: String?
    /// VF number → its settings (`IFLA_VFINFO_LIST`, present when asked with RTEXT_FILTER_VF).
    public var vfs: [Int: VFSettings]

    public init(index: Int32, name: String?, vfs: [Int: VFSettings] = [:]) {
        self.index = index
        self.name = name
        self.vfs = vfs
    }
}

/// rtnetlink messages for links and their VFs, built and parsed as bytes (host byte order, as netlink is). Pure: the
/// socket is `RTNetlinkSocket`.
public enum RTNetlink {
    // linux/netlink.h, linux/rtnetlink.h, linux/if_link.h
    static let nlmsgError: UInt16 = 2
    static let nlmsgDone: UInt16 = 3
    public static let newLink: UInt16 = 16
    public static let getLink: UInt16 = 18
    public static let setLink: UInt16 = 19
    static let flagRequest: UInt16 = 0x1
    static let flagAck: UInt16 = 0x4
    static let iflaIfname: UInt16 = 3
    static let iflaVFInfoList: UInt16 = 22
    static let iflaExtMask: UInt16 = 29
    static let rtextFilterVF: UInt32 = 1
    static let iflaVFInfo: UInt16 = 1
    static let iflaVFMac: UInt16 = 1
    static let iflaVFVlan: UInt16 = 2
    static let iflaVFSpoofchk: UInt16 = 4
    static let iflaVFTrust: UInt16 = 9
    static let headerSize = 16
    static let ifinfomsgSize = 16
    /// `struct ifla_vf_mac`: u32 vf, u8 mac[32].
    static let vfMacSize = 36

    /// RTM_GETLINK of `name`, asking for its VFs too.
    public static func getLinkRequest(name: String, sequence: UInt32) -> [UInt8] {
        var message = Builder(type: getLink, flags: flagRequest, sequence: sequence)
        message.attribute(iflaIfname, string: name)
        message.attribute(iflaExtMask, u32: rtextFilterVF)
        return message.finish()
    }

    /// RTM_SETLINK on the PF `name` setting VF `vf`'s non-nil fields (a VLAN without `qos` gets priority 0), with an
    /// acknowledgement asked for.
    public static func setVFRequest(name: String, vf: Int, settings: VFSettings,
                                    sequence: UInt32) throws(NetlinkError) -> [UInt8] {
        var message = Builder(type: setLink, flags: flagRequest | flagAck, sequence: sequence)
        message.attribute(iflaIfname, string: name)
        let number = UInt32(truncatingIfNeeded: vf)
        let list = message.begin(iflaVFInfoList)
        let info = message.begin(iflaVFInfo)
        if let mac = settings.mac {
            guard let octets = macOctets(mac) else { throw .invalidMAC(mac) }
            message.attribute(iflaVFMac, payload: u32Bytes(number) + octets + [UInt8](repeating: 0, count: 26))
        }
        if let vlan = settings.vlan {
            let qos = UInt32(settings.qos ?? 0)
            message.attribute(iflaVFVlan, payload: u32Bytes(number) + u32Bytes(UInt32(vlan)) + u32Bytes(qos))
        }
        if let trust = settings.trust {
            message.attribute(iflaVFTrust, payload: u32Bytes(number) + u32Bytes(trust ? 1 : 0))
        }
        if let spoofCheck = settings.spoofCheck {
            message.attribute(iflaVFSpoofchk, payload: u32Bytes(number) + u32Bytes(spoofCheck ? 1 : 0))
        }
        message.end(info)
        message.end(list)
        return message.finish()
    }

    /// What the kernel answered to the request numbered `sequence`.
    public enum Reply: Sendable, Equatable {
        /// NLMSG_ERROR with 0.
        case ack
        /// NLMSG_ERROR with -errno (made positive here).
        case error(Int32)
        case link(LinkMessage)
    }

    /// The replies in one datagram that answer `sequence` (others are skipped), in order.
    public static func parse(_ bytes: [UInt8], sequence: UInt32) throws(NetlinkError) -> [Reply] {
        var replies: [Reply] = []
        var offset = 0
        while offset + headerSize <= bytes.count {
            let length = Int(u32(bytes, offset))
            guard length >= headerSize, offset + length <= bytes.count else {
                throw .malformed("message length \(length) at offset \(offset) of \(bytes.count) bytes")
            }
            let type = u16(bytes, offset + 4)
            let body = Array(bytes[(offset + headerSize)..<(offset + length)])
            if u32(bytes, offset + 8) == sequence {
                switch type {
                case nlmsgError:
                    guard body.count >= 4 else { throw .malformed("NLMSG_ERROR of \(body.count) bytes") }
                    let code = Int32(bitPattern: u32(body, 0))
                    replies.append(code == 0 ? .ack : .error(-code))
                case newLink:
                    replies.append(.link(try parseLink(body)))
                default:
                    break
                }
            }
            offset += align(length)
        }
        return replies
    }

    /// The body of an RTM_NEWLINK: ifinfomsg, then attributes.
    static func parseLink(_ body: [UInt8]) throws(NetlinkError) -> LinkMessage {
        guard body.count >= ifinfomsgSize else { throw .malformed("RTM_NEWLINK of \(body.count) bytes") }
        var link = LinkMessage(index: Int32(bitPattern: u32(body, 4)), name: nil)
        for (type, payload) in try attributes(body, from: ifinfomsgSize) {
            switch type {
            case iflaIfname:
                link.name = String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
            case iflaVFInfoList:
                for (infoType, info) in try attributes(payload, from: 0) where infoType == iflaVFInfo {
                    let (number, settings) = try parseVFInfo(info)
                    link.vfs[number] = settings
                }
            default:
                break
            }
        }
        return link
    }

    /// One IFLA_VF_INFO: the VF number (from any of its structs) and what it reports.
    static func parseVFInfo(_ info: [UInt8]) throws(NetlinkError) -> (Int, VFSettings) {
        var settings = VFSettings()
        var number: UInt32?
        func setting(_ payload: [UInt8]) -> Bool? {
            let value = u32(payload, 4)
            return value == UInt32.max ? nil : value != 0
        }
        for (type, payload) in try attributes(info, from: 0) {
            switch type {
            case iflaVFMac:
                guard payload.count >= 10 else { throw .malformed("IFLA_VF_MAC of \(payload.count) bytes") }
                number = u32(payload, 0)
                settings.mac = payload[4..<10].map { hex($0) }.joined(separator: ":")
            case iflaVFVlan:
                guard payload.count >= 12 else { throw .malformed("IFLA_VF_VLAN of \(payload.count) bytes") }
                number = u32(payload, 0)
                settings.vlan = UInt16(truncatingIfNeeded: u32(payload, 4))
                settings.qos = UInt8(truncatingIfNeeded: u32(payload, 8))
            case iflaVFTrust, iflaVFSpoofchk:
                guard payload.count >= 8 else { throw .malformed("IFLA_VF attribute \(type) of \(payload.count) bytes") }
                number = u32(payload, 0)
                if type == iflaVFTrust {
                    settings.trust = setting(payload)
                } else {
                    settings.spoofCheck = setting(payload)
                }
            default:
                break
            }
        }
        guard let number else { throw .malformed("IFLA_VF_INFO without a VF number") }
        return (Int(number), settings)
    }

    /// The attributes of `bytes` from `start`: (type without the nested/byte-order flags, payload).
    static func attributes(_ bytes: [UInt8], from start: Int) throws(NetlinkError) -> [(UInt16, [UInt8])] {
        var result: [(UInt16, [UInt8])] = []
        var offset = start
        while offset + 4 <= bytes.count {
            let length = Int(u16(bytes, offset))
            guard length >= 4, offset + length <= bytes.count else {
                throw .malformed("attribute length \(length) at offset \(offset) of \(bytes.count) bytes")
            }
            result.append((u16(bytes, offset + 2) & 0x3fff, Array(bytes[(offset + 4)..<(offset + length)])))
            offset += align(length)
        }
        return result
    }

    /// Appends a netlink message: header, an all-zero ifinfomsg (AF_UNSPEC, any index), attributes.
    struct Builder {
        var bytes: [UInt8]

        init(type: UInt16, flags: UInt16, sequence: UInt32) {
            // nlmsghdr: length (filled in by finish), type, flags, sequence, port 0.
            bytes = RTNetlink.u32Bytes(0) + RTNetlink.u16Bytes(type) + RTNetlink.u16Bytes(flags)
                + RTNetlink.u32Bytes(sequence) + RTNetlink.u32Bytes(0)
            bytes += [UInt8](repeating: 0, count: RTNetlink.ifinfomsgSize)
        }

        mutating func attribute(_ type: UInt16, payload: [UInt8]) {
            bytes += RTNetlink.u16Bytes(UInt16(4 + payload.count)) + RTNetlink.u16Bytes(type) + payload
            pad()
        }

        mutating func attribute(_ type: UInt16, string: String) {
            attribute(type, payload: Array(string.utf8) + [0])
        }

        mutating func attribute(_ type: UInt16, u32 value: UInt32) {
            attribute(type, payload: RTNetlink.u32Bytes(value))
        }

        /// Starts a nested attribute; `end` fills in its length.
        mutating func begin(_ type: UInt16) -> Int {
            let start = bytes.count
            bytes += RTNetlink.u16Bytes(0) + RTNetlink.u16Bytes(type)
            return start
        }

        mutating func end(_ start: Int) {
            put(UInt16(bytes.count - start), at: start)
        }

        mutating func finish() -> [UInt8] {
            let length = UInt32(bytes.count)
            withUnsafeBytes(of: length) { for (i, byte) in $0.enumerated() { bytes[i] = byte } }
            return bytes
        }

        private mutating func pad() {
            while bytes.count % 4 != 0 { bytes.append(0) }
        }

        private mutating func put(_ value: UInt16, at offset: Int) {
            withUnsafeBytes(of: value) { for (i, byte) in $0.enumerated() { bytes[offset + i] = byte } }
        }
    }

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    static func u32Bytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
    static func u16Bytes(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { for i in 0..<4 { $0[i] = bytes[offset + i] } }
        return value
    }

    static func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        var value: UInt16 = 0
        withUnsafeMutableBytes(of: &value) { for i in 0..<2 { $0[i] = bytes[offset + i] } }
        return value
    }

    static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }

    /// The six octets of `mac`, nil when it is not `xx:xx:xx:xx:xx:xx`.
    static func macOctets(_ mac: String) -> [UInt8]? {
        guard let normal = MACAddress.normalized(mac) else { return nil }
        return normal.split(separator: ":").compactMap { UInt8($0, radix: 16) }
    }
}
