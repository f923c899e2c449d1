/// Lists the members of a tar archive (an OVA package is one: the `.ovf` first, then the manifest and the disk
/// images), reading only the headers through a closure, so a 50 GiB package costs a few kilobytes of reads. Pure:
/// the caller does the reading (`pread` on the file, or a byte array in tests).
///
/// Reads POSIX ustar (with its 155-byte name prefix), GNU tar (`././@LongLink` long names, base-256 sizes) and pax
/// extended headers (`path` and `size` records). Refuses, naming the header's offset: a bad checksum, a size or name
/// that is not a number, data past the end, and more members, or longer names, than `TarLimits` allows.
public enum TarReader {
    /// Reads `count` bytes at `offset`; fewer (or none) at the end of the archive.
    public typealias ReadAt = (_ offset: UInt64, _ count: Int) throws -> [UInt8]

    /// The archive's members in order, up to the end-of-archive marker (a zero block) or the end of the data.
    ///
    /// - Parameter archiveSize: the archive's size when known: data that would run past it is refused.
    public static func members(archiveSize: UInt64? = nil, limits: TarLimits = .standard,
                               readAt: ReadAt) throws(TarError) -> [TarMember] {
        var members: [TarMember] = []
        var offset: UInt64 = 0
        var longName: String?
        var paxPath: String?
        var paxSize: UInt64?
        var headers = 0
        while true {
            headers += 1
            if headers > limits.members * 3 + 3 {
                throw TarError(offset: offset, message: "more than \(limits.members) members (or a chain of extended "
                    + "headers)")
            }
            let block = try read(readAt, offset, 512)
            if block.isEmpty { break }
            guard block.count == 512 else {
                throw TarError(offset: offset, message: "the archive ends inside a header (\(block.count) of 512 bytes)")
            }
            if block.allSatisfy({ $0 == 0 }) { break }
            try checkChecksum(block, offset: offset)
            let type = block[156]
            let headerSize = try number(block[124..<136], field: "size", offset: offset)
            let isExtension = [UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K")].contains(type)
            let size = isExtension ? headerSize : paxSize ?? headerSize
            let dataOffset = offset + 512
            let (end, overflow) = dataOffset.addingReportingOverflow(size)
            if overflow || (archiveSize.map { end > $0 } ?? false) {
                throw TarError(offset: offset, message: "the member's \(size) bytes run past the end of the archive")
            }
            let padded = (size + 511) / 512 * 512
            let next = dataOffset + padded

            switch type {
            case UInt8(ascii: "L"):
                // GNU: the data is the next member's name.
                guard size <= UInt64(limits.nameLength) + 1 else {
                    throw TarError(offset: offset, message: "a long name of \(size) bytes; at most \(limits.nameLength)")
                }
                let data = try read(readAt, dataOffset, Int(size))
                guard data.count == Int(size) else {
                    throw TarError(offset: offset, message: "the archive ends inside a long name")
                }
                longName = try text(data.prefix { $0 != 0 }, field: "long name", offset: offset)
            case UInt8(ascii: "x"):
                guard size <= UInt64(limits.paxHeaderBytes) else {
                    throw TarError(offset: offset, message: "an extended header of \(size) bytes; at most "
                        + "\(limits.paxHeaderBytes)")
                }
                let data = try read(readAt, dataOffset, Int(size))
                guard data.count == Int(size) else {
                    throw TarError(offset: offset, message: "the archive ends inside an extended header")
                }
                let records = try paxRecords(data, offset: offset)
                if let path = records["path"] {
                    guard path.utf8.count <= limits.nameLength else {
                        throw TarError(offset: offset, message: "a path of \(path.utf8.count) bytes; at most "
                            + "\(limits.nameLength)")
                    }
                    paxPath = path
                }
                if let sizeText = records["size"] {
                    guard let value = UInt64(sizeText) else {
                        throw TarError(offset: offset, message: "the extended header's size '\(sizeText.prefix(30))' "
                            + "is not a number")
                    }
                    paxSize = value
                }
            case UInt8(ascii: "g"), UInt8(ascii: "K"):
                // Global pax settings and GNU long link names: nothing a member list needs.
                break
            default:
                guard members.count < limits.members else {
                    throw TarError(offset: offset, message: "more than \(limits.members) members")
                }
                let name: String
                if let override = paxPath ?? longName {
                    name = override
                } else {
                    let base = try text(block[0..<100].prefix { $0 != 0 }, field: "name", offset: offset)
                    let ustar = block[257..<263].elementsEqual(Array("ustar\0".utf8))
                    let prefix = ustar ? try text(block[345..<500].prefix { $0 != 0 }, field: "prefix", offset: offset)
                        : ""
                    name = prefix.isEmpty ? base : prefix + "/" + base
                }
                guard !name.isEmpty else { throw TarError(offset: offset, message: "a member without a name") }
                members.append(TarMember(name: name, size: size, dataOffset: dataOffset, headerOffset: offset,
                                         kind: TarMember.Kind(typeflag: type)))
                longName = nil
                paxPath = nil
                paxSize = nil
            }
            offset = next
        }
        return members
    }

    static func read(_ readAt: ReadAt, _ offset: UInt64, _ count: Int) throws(TarError) -> [UInt8] {
        do {
            let bytes = try readAt(offset, count)
            return bytes.count > count ? Array(bytes.prefix(count)) : bytes
        } catch {
            throw TarError(offset: offset, message: "cannot read the archive: \(error)")
        }
    }

    /// The header's checksum: the sum of its bytes with the checksum field as spaces (unsigned, or signed as some
    /// old tars wrote it).
    static func checkChecksum(_ block: [UInt8], offset: UInt64) throws(TarError) {
        let stored = try number(block[148..<156], field: "checksum", offset: offset)
        var unsigned: UInt64 = 0
        var signed: Int64 = 0
        for (index, byte) in block.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += UInt64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || Int64(stored) == signed else {
            throw TarError(offset: offset, message: "header checksum \(stored) does not match its bytes (\(unsigned)): "
                + "not a tar archive, or a corrupt one")
        }
    }

    /// An octal field (NUL or space terminated), or GNU's base-256 form (first byte 0x80).
    static func number(_ field: ArraySlice<UInt8>, field name: String, offset: UInt64) throws(TarError) -> UInt64 {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            guard first == 0x80 else {
                throw TarError(offset: offset, message: "the \(name) field is a negative base-256 number")
            }
            var value: UInt64 = 0
            for byte in field.dropFirst() {
                guard value >> 56 == 0 else {
                    throw TarError(offset: offset, message: "the \(name) field is too large")
                }
                value = value << 8 | UInt64(byte)
            }
            return value
        }
        var value: UInt64 = 0
        var digits = 0
        var ended = false
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if digits > 0 { ended = true }
                continue
            }
            guard !ended, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7") else {
                throw TarError(offset: offset, message: "the \(name) field is not an octal number")
            }
            guard value >> 60 == 0 else { throw TarError(offset: offset, message: "the \(name) field is too large") }
            value = value << 3 | UInt64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return value
    }

    static func text<C: Collection>(_ bytes: C, field: String, offset: UInt64) throws(TarError) -> String
        where C.Element == UInt8 {
        guard let text = String(validating: Array(bytes), as: UTF8.self) else {
            throw TarError(offset: offset, message: "the \(field) is not UTF-8")
        }
        return text
    }

    /// pax records: `LEN key=value\n`, LEN counting the whole record.
    static func paxRecords(_ data: [UInt8], offset: UInt64) throws(TarError) -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < data.count {
            if data[index] == 0 { break }
            var length = 0
            var cursor = index
            while cursor < data.count, data[cursor] >= UInt8(ascii: "0"), data[cursor] <= UInt8(ascii: "9"),
                  length < 1 << 20 {
                length = length * 10 + Int(data[cursor] - UInt8(ascii: "0"))
                cursor += 1
            }
            guard cursor < data.count, data[cursor] == UInt8(ascii: " "), length > cursor - index + 1,
                  index + length <= data.count, data[index + length - 1] == UInt8(ascii: "\n") else {
                throw TarError(offset: offset, message: "a malformed extended header record")
            }
            let body = data[(cursor + 1)..<(index + length - 1)]
            guard let equals = body.firstIndex(of: UInt8(ascii: "=")) else {
                throw TarError(offset: offset, message: "an extended header record without '='")
            }
            let key = try text(body[body.startIndex..<equals], field: "extended header key", offset: offset)
            let value = try text(body[(equals + 1)...], field: "extended header value", offset: offset)
            records[key] = value
            index += length
        }
        return records
    }
}

/// One member of a tar archive.
public struct TarMember: Sendable, Equatable {
    /// The path as stored (ustar prefix joined, GNU or pax long name applied). Untrusted: may hold `..` or start with `/`.
    public var name: String
    public var size: UInt64
    /// Where the member's bytes start in the archive.
    public var dataOffset: UInt64
    /// Where its header starts.
    public var headerOffset: UInt64
    public var kind: Kind

    public init(name: String, size: UInt64, dataOffset: UInt64, headerOffset: UInt64, kind: Kind) {
        self.name = name
        self.size = size
        self.dataOffset = dataOffset
        self.headerOffset = headerOffset
        self.kind = kind
    }

    public enum Kind: Sendable, Equatable {
        case file, directory, symlink, hardlink
        /// Devices, FIFOs and anything else, by its typeflag byte.
        case other(UInt8)

        init(typeflag: UInt8) {
            switch typeflag {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): self = .file
            case UInt8(ascii: "5"): self = .directory
            case UInt8(ascii: "2"): self = .symlink
            case UInt8(ascii: "1"): self = .hardlink
            default: self = .other(typeflag)
            }
        }
    }

    /// The file name after the last `/` (an OVA's members are flat; this is what an OVF's href names).
    public var baseName: String {
        name.split(separator: "/").last.map(String.init) ?? name
    }
}

/// How much of an archive is read at most.
public struct TarLimits: Sendable, Equatable {
    public var members: Int
    /// Bytes in a member's name (after a long name or pax path).
    public var nameLength: Int
    /// Bytes in one pax extended header.
    public var paxHeaderBytes: Int

    public init(members: Int = 1_000, nameLength: Int = 4_096, paxHeaderBytes: Int = 64 << 10) {
        self.members = members
        self.nameLength = nameLength
        self.paxHeaderBytes = paxHeaderBytes
    }

    public static let standard = TarLimits()
}

/// Why an archive was refused: the offset of the header at fault and what is wrong.
public struct TarError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: UInt64
    public var message: String

    public init(offset: UInt64, message: String) {
        self.offset = offset
        self.message = message
    }

    /// `offset N: message`.
    public var description: String { "offset \(offset): \(message)" }
}
