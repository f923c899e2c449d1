/// The syntax of the names corral accepts, defined once for profiles, requests, the CLI and the daemon.
/// Checked by hand over ASCII (no regex engine, no Foundation).

/// A VM's name: the profile's `name`, `corral up --name`, the state folder, the API paths.
public enum VMName {
    public static let pattern = "[a-z0-9][a-z0-9-]{0,62}"
    public static let rule = "lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters"
    public static let maxLength = 63

    /// `[a-z0-9][a-z0-9-]{0,62}`
    public static func isValid(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maxLength, isLowerAlnum(first) else { return false }
        return name.utf8.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    static func isLowerAlnum(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
    }
}

/// Disk, NIC and DIMM ids: they become QEMU device and node ids, and path segments of the API.
public enum DeviceID {
    public static let pattern = "[a-zA-Z][a-zA-Z0-9_-]{0,31}"
    public static let rule = "a letter, then up to 31 letters, digits, '_' or '-'"
    public static let maxLength = 32

    /// `[a-zA-Z][a-zA-Z0-9_-]{0,31}`
    public static func isValid(_ id: String) -> Bool {
        guard let first = id.utf8.first, id.utf8.count <= maxLength, isLetter(first) else { return false }
        return id.utf8.allSatisfy {
            isLetter($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: "-")
        }
    }

    static func isLetter(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
    }
}

/// A NIC's MAC address: `xx:xx:xx:xx:xx:xx`, hex digits in either case.
public enum MACAddress {
    /// Six pairs of hex digits separated by ':'.
    public static func isValid(_ mac: String) -> Bool { normalized(mac) != nil }

    /// The address in lower case; nil when it is not six hex pairs.
    public static func normalized(_ mac: String) -> String? {
        let octets = mac.split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6,
            octets.allSatisfy({ $0.utf8.count == 2 && $0.allSatisfy { $0.isASCII && $0.isHexDigit } })
        else { return nil }
        return mac.lowercased()
    }

    /// The group bit (lowest bit of the first octet) is clear. Only meaningful for a valid address.
    public static func isUnicast(_ mac: String) -> Bool {
        guard let first = mac.split(separator: ":").first, let octet = UInt8(first, radix: 16) else { return false }
        return octet & 1 == 0
    }
}

/// Linux network interface names (`bridge`, `ifname` of a NIC).
public enum InterfaceName {
    public static let rule = "1-15 characters, no '/', ':', ',' or whitespace"

    /// 1–15 bytes, not `.` or `..`, no `/`, `:`, whitespace; no `,` (QEMU option syntax).
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 15, name != ".", name != ".." else { return false }
        return !name.contains { $0 == "/" || $0 == ":" || $0 == "," || $0.isWhitespace }
    }
}
