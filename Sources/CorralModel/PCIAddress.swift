/// A PCI device's address as sysfs names it: `DDDD:BB:SS.F` (domain, bus, slot, function), lower-case hex.
public struct PCIAddress: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var domain: UInt16
    public var bus: UInt8
    /// 0…31.
    public var slot: UInt8
    /// 0…7.
    public var function: UInt8

    public init(domain: UInt16 = 0, bus: UInt8, slot: UInt8, function: UInt8) {
        self.domain = domain
        self.bus = bus
        self.slot = slot & 0x1f
        self.function = function & 0x7
    }

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)

        public var description: String {
            switch self {
            case .malformed(let text):
                return "'\(text.prefix(40))' is not a PCI address like 0000:65:00.0 (domain:bus:slot.function, hex; "
                    + "slot 00-1f, function 0-7)"
            }
        }
    }

    /// `0000:65:00.0`, or `65:00.0` (domain 0); hex digits in either case.
    public init(parsing text: String) throws(ParseError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { throw .malformed(text) }
        let slotFunction = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard slotFunction.count == 2 else { throw .malformed(text) }
        func hex(_ part: Substring, digits: Int) throws(ParseError) -> UInt32 {
            guard part.count == digits, part.allSatisfy(\.isHexDigit), let value = UInt32(part, radix: 16) else {
                throw .malformed(text)
            }
            return value
        }
        let domain = parts.count == 3 ? try hex(parts[0], digits: 4) : 0
        let bus = try hex(parts[parts.count - 2], digits: 2)
        let slot = try hex(slotFunction[0], digits: 2)
        let function = try hex(slotFunction[1], digits: 1)
        guard slot <= 0x1f, function <= 7 else { throw .malformed(text) }
        self.init(domain: UInt16(domain), bus: UInt8(bus), slot: UInt8(slot), function: UInt8(function))
    }

    /// `0000:65:00.0`.
    public var description: String {
        func hex(_ value: UInt32, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text
        }
        return "\(hex(UInt32(domain), 4)):\(hex(UInt32(bus), 2)):\(hex(UInt32(slot), 2)).\(hex(UInt32(function), 1))"
    }

    /// The same slot, function 0..7 (a multifunction device's siblings).
    public func withFunction(_ function: UInt8) -> PCIAddress {
        PCIAddress(domain: domain, bus: bus, slot: slot, function: function)
    }

    public static func < (a: PCIAddress, b: PCIAddress) -> Bool {
        (a.domain, a.bus, a.slot, a.function) < (b.domain, b.bus, b.slot, b.function)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try PCIAddress(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
