/// Deterministic identifiers derived from names: no randomness, so the same profile always
/// yields the same UUID and MACs (golden files, restarts and migrations rely on it).
enum StableIDs {
    /// corral's namespace for name-based (version 5) UUIDs.
    static let namespace: [UInt8] = [
        0xa5, 0x29, 0x22, 0xf0, 0xb4, 0x70, 0x4a, 0xfa, 0x91, 0x31, 0xf5, 0x96, 0xcf, 0x0e, 0x4a, 0x7b,
    ]

    /// RFC 4122 version 5 UUID of `name` in corral's namespace, lower-case text.
    static func uuid(for name: String) -> String {
        var digest = SHA1.hash(namespace + Array(name.utf8))
        digest[6] = (digest[6] & 0x0F) | 0x50  // version 5
        digest[8] = (digest[8] & 0x3F) | 0x80  // variant 10xx (RFC 4122)
        let hex = digest.prefix(16).map(hexByte)
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    /// `52:54:00:xx:xx:xx` (QEMU's locally administered OUI) from a hash of VM name and NIC id.
    static func mac(vmName: String, nicID: String) -> String {
        // A NUL separator keeps ("ab", "c") and ("a", "bc") apart.
        let digest = SHA1.hash(Array("corral-mac".utf8) + [0] + Array(vmName.utf8) + [0] + Array(nicID.utf8))
        return (["52", "54", "00"] + digest.prefix(3).map(hexByte)).joined(separator: ":")
    }

    static func hexByte(_ byte: UInt8) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}

/// SHA-1 (FIPS 180-4), enough for name-based identifiers. Not used for anything security related.
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]

        var data = message
        let bitLength = UInt64(message.count) &* 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }

        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + i * 4
                w[i] = UInt32(data[b]) << 24 | UInt32(data[b + 1]) << 16 | UInt32(data[b + 2]) << 8 | UInt32(data[b + 3])
            }
            for i in 16..<80 { w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }

            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let t = rotl(a, 5) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = rotl(b, 30)
                b = a
                a = t
            }
            h[0] = h[0] &+ a
            h[1] = h[1] &+ b
            h[2] = h[2] &+ c
            h[3] = h[3] &+ d
            h[4] = h[4] &+ e
        }
        return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - 8 * $0)) } }
    }

    private static func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 - n)) }
}

/// A hex digest of content, for identifiers that must change exactly when the content does (a cloud-init
/// instance-id). SHA-1: change detection, not security.
public enum ContentDigest {
    public static func sha1Hex(_ bytes: [UInt8]) -> String {
        SHA1.hash(bytes).map(StableIDs.hexByte).joined()
    }
}
