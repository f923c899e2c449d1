import CorralModel
import Profiles

/// What an importer made of a document: the profile, the disk images the VM had, and a note for everything in the
/// document the profile does not carry as it was.
public struct ImportResult: Sendable, Equatable {
    public var profile: Profile
    /// One per disk of `profile`, in the same order: where the image is and what format it was in.
    public var disks: [ImportedDisk]
    /// In document order.
    public var notes: [ImportNote]

    public init(profile: Profile, disks: [ImportedDisk] = [], notes: [ImportNote] = []) {
        self.profile = profile
        self.disks = disks
        self.notes = notes
    }
}

/// A disk image the imported VM used.
public struct ImportedDisk: Sendable, Equatable, Codable {
    /// The id of the disk in the profile (`profile.disks[profileIndex].id`).
    public var id: String
    /// Index in `profile.disks`.
    public var profileIndex: Int
    /// libvirt: the image path (`<source file>` or `<source dev>`). OVF: the file name in the package
    /// (`ovf:href` of the `References/File`).
    public var source: String
    /// libvirt: the `<driver type>` string (`qcow2`, `raw`, `vmdk`…; empty when not given). OVF: the DiskSection's
    /// `ovf:format` URL (e.g. `http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized`).
    public var format: String
    /// The format `format` names when corral can use it directly; nil when the image needs `corral convert`.
    public var profileFormat: DiskFormat?
    /// OVF: the virtual size the DiskSection gives (`ovf:capacity` × `ovf:capacityAllocationUnits`); nil for libvirt.
    public var capacity: ByteSize?
    /// OVF: the `ovf:populatedSize` (bytes in use); nil when absent.
    public var populatedSize: UInt64?

    public init(id: String, profileIndex: Int, source: String, format: String, profileFormat: DiskFormat?,
                capacity: ByteSize? = nil, populatedSize: UInt64? = nil) {
        self.id = id
        self.profileIndex = profileIndex
        self.source = source
        self.format = format
        self.profileFormat = profileFormat
        self.capacity = capacity
        self.populatedSize = populatedSize
    }

    /// True when the image is not qcow2 or raw and must be converted before the VM can use it.
    public var needsConversion: Bool { profileFormat == nil }
}

/// Something in the imported document the profile does not carry as it was.
public struct ImportNote: Sendable, Equatable, Codable, CustomStringConvertible {
    /// XPath of the element or attribute: `/domain/devices/graphics[1]`, `/domain/cputune/vcpupin[2]/@cpuset`.
    /// A step carries `[n]` (1-based, among same-named siblings) when its parent has several elements of that name,
    /// and always below libvirt's `<devices>` and OVF's `VirtualHardwareSection`.
    public var path: String
    /// Line of the element (or of the attribute) in the document.
    public var line: Int
    /// What it was: `<graphics type='vnc'>`, `cpuset='0-3'`.
    public var what: String
    /// What corral did instead.
    public var action: String

    public init(path: String, line: Int, what: String, action: String) {
        self.path = path
        self.line = line
        self.what = what
        self.action = action
    }

    /// `XPATH: what — action`.
    public var description: String { "\(path): \(what) — \(action)" }

    /// Text from the document made safe to print on one line: line breaks and tabs become spaces, control
    /// characters (C0, DEL, C1, which a terminal may act on) and line separators become `\u{…}`.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if scalar == "\n" || scalar == "\r" || scalar == "\t" {
                out += " "
            } else if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x2028 || v == 0x2029 || v == 0xFEFF {
                out += "\\u{" + String(v, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Options shared by the importers.
public struct ImportOptions: Sendable, Equatable {
    /// Pick the buses every guest OS drives without extra drivers (NVMe disks, e1000e NICs) instead of virtio.
    public var compat: Bool
    /// The profile's name; nil: the document's (made a valid corral VM name).
    public var name: String?

    public init(compat: Bool = false, name: String? = nil) {
        self.compat = compat
        self.name = name
    }
}

/// Why a document could not be imported: where (line and column, and the XPath when an element is to blame) and why.
public struct ImportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// XPath of the element or attribute; empty for a problem with the document as a whole (XML syntax).
    public var path: String
    public var line: Int
    public var column: Int
    public var message: String
    /// The parser's refusal when the document is not well-formed (or is refused) XML.
    public var xml: XMLError?

    public init(path: String, line: Int, column: Int, message: String, xml: XMLError? = nil) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.xml = xml
    }

    init(_ xml: XMLError) {
        self.init(path: "", line: xml.line, column: xml.column, message: xml.message, xml: xml)
    }

    /// `LINE:COL: XPATH: message` (the XPath left out when empty); prefix it with the file name for users.
    public var description: String {
        "\(line):\(column): " + (path.isEmpty ? "" : path + ": ") + message
    }
}
