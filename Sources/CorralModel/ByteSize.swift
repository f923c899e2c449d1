/// A size in bytes, written the way QEMU reads sizes: `K M G T` and `KiB MiB GiB TiB`
/// are powers of 1024, `B` or no suffix on `0` means bytes. Decimal `KB/MB/GB/TB` are
/// rejected because QEMU would read them as binary anyway and the difference bites.
public struct ByteSize: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public static func kib(_ n: UInt64) -> ByteSize { ByteSize(bytes: n << 10) }
    public static func mib(_ n: UInt64) -> ByteSize { ByteSize(bytes: n << 20) }
    public static func gib(_ n: UInt64) -> ByteSize { ByteSize(bytes: n << 30) }

    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case notANumber(String)
        case missingUnit(String)
        case decimalUnit(String, suggestion: String)
        case unknownUnit(String)
        case tooLarge(String)

        public var description: String {
            switch self {
            case .empty: return "a size is required (e.g. 512M, 2G)"
            case .notANumber(let s): return "'\(s)' is not a size (e.g. 512M, 2G)"
            case .missingUnit(let s): return "'\(s)' has no unit; write e.g. \(s)M or \(s)G (K, M, G, T are binary)"
            case .decimalUnit(let s, let suggestion):
                return "'\(s)' uses a decimal unit; QEMU sizes are binary: write \(suggestion)"
            case .unknownUnit(let s): return "'\(s)' has an unknown unit; use K, M, G, T (or KiB, MiB, GiB, TiB)"
            case .tooLarge(let s): return "'\(s)' is too large"
            }
        }
    }

    /// Parses `512M`, `1.5G`, `2GiB`, `4096B`, `0`.
    public init(parsing text: String) throws(ParseError) {
        let s = text.trimmingCharactersInWhitespace()
        guard !s.isEmpty else { throw .empty }
        let numberEnd = s.firstIndex { !($0.isNumber || $0 == ".") } ?? s.endIndex
        let numberText = String(s[..<numberEnd])
        let unitText = String(s[numberEnd...]).trimmingCharactersInWhitespace()
        guard let number = Double(numberText), number >= 0 else { throw .notANumber(text) }
        let shift: Int
        switch unitText {
        case "":
            guard number == 0 else { throw .missingUnit(text) }
            shift = 0
        case "B", "b": shift = 0
        case "K", "k", "KiB": shift = 10
        case "M", "m", "MiB": shift = 20
        case "G", "g", "GiB": shift = 30
        case "T", "t", "TiB": shift = 40
        case "KB", "kB", "MB", "GB", "TB":
            throw .decimalUnit(text, suggestion: numberText + String(unitText.uppercased().prefix(1)))
        default: throw .unknownUnit(text)
        }
        let value = number * Double(UInt64(1) << UInt64(shift))
        guard value < 1.8e19 else { throw .tooLarge(text) }
        guard value.rounded() == value else { throw .notANumber(text) }
        self.bytes = UInt64(value)
    }

    /// The shortest exact QEMU spelling: `512M`, `2G`, `1536K`, `100B`.
    public var qemuText: String {
        for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
            let unitBytes = UInt64(1) << UInt64(shift)
            if bytes >= unitBytes && bytes % unitBytes == 0 { return "\(bytes / unitBytes)\(unit)" }
        }
        return "\(bytes)B"
    }

    /// Whole mebibytes, rounded down (QEMU's `-m` default unit).
    public var mebibytes: UInt64 { bytes >> 20 }

    public var description: String { qemuText }

    // Stored as its QEMU text so state files stay readable.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let n = try? container.decode(UInt64.self) {
            self.bytes = n
        } else {
            let text = try container.decode(String.self)
            do {
                self.bytes = try ByteSize(parsing: text).bytes
            } catch {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(qemuText)
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace (no Foundation).
    package func trimmingCharactersInWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
