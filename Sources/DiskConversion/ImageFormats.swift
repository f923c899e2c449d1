import CorralModel

/// A disk image format corral converts from, by qemu-img's name for it.
///
/// qemu-img is never left to guess a format (a guest can write any header into a raw disk): every image corral
/// hands it comes with `-f` and one of these names.
public enum SourceFormat: String, Sendable, Hashable, CaseIterable, Codable {
    /// VMware (ESXi, Workstation, OVA exports).
    case vmdk
    /// VirtualBox.
    case vdi
    /// Hyper-V (Windows Server 2012 on).
    case vhdx
    /// Virtual PC / older Hyper-V / Azure VHD: qemu-img calls it `vpc`.
    case vpc
    /// QEMU's first copy-on-write format (before qcow2).
    case qcow
    /// QEMU Enhanced Disk.
    case qed
    case raw
    case qcow2

    /// `--from` values: qemu-img's names, and `vhd` for `vpc`.
    public init?(option text: String) {
        let lowered = text.lowercased()
        if lowered == "vhd" {
            self = .vpc
            return
        }
        self.init(rawValue: lowered)
    }

    /// The format a file's extension names; nil for any other extension (or none).
    /// `.vhd` is always `vpc`; `.img` and `.raw` are raw.
    public static func fromExtension(of path: String) -> SourceFormat? {
        switch PathText.fileExtension(path) {
        case "vmdk": return .vmdk
        case "vdi": return .vdi
        case "vhdx": return .vhdx
        case "vhd": return .vpc
        case "qcow": return .qcow
        case "qed": return .qed
        case "img", "raw": return .raw
        case "qcow2": return .qcow2
        default: return nil
        }
    }

    /// `vmdk, vdi, vhdx, vpc (.vhd), qcow, qed, raw (.img), qcow2`: what an error about a format lists.
    public static var allowedList: String {
        allCases.map { format in
            switch format {
            case .vpc: return "vpc (.vhd)"
            case .raw: return "raw (.img, .raw)"
            default: return format.rawValue
            }
        }.joined(separator: ", ")
    }
}

/// The formats corral converts to: what a profile's disk can be (`DiskFormat`), from `--to` or the output's name.
public enum TargetFormats {
    /// `--to` values.
    public static func parse(_ text: String) -> DiskFormat? { DiskFormat(rawValue: text.lowercased()) }

    /// `.raw` and `.img` are raw; `.qcow2` and any other name qcow2. nil when the name ends in another image
    /// format's extension (`out.vmdk`): corral writes only qcow2 and raw, and a qcow2 named `.vmdk` would mislead.
    public static func fromExtension(of path: String) -> DiskFormat? {
        switch PathText.fileExtension(path) {
        case "raw", "img": return .raw
        case "qcow2": return .qcow2
        case let other where other.isEmpty: return .qcow2
        default: return SourceFormat.fromExtension(of: path) == nil ? .qcow2 : nil
        }
    }

    public static var allowedList: String { DiskFormat.allCases.map(\.rawValue).joined(separator: ", ") }
}

/// What `corral convert IN OUT [--from F] [--to F]` asks for, with the formats settled.
public struct ConvertPlan: Sendable, Equatable {
    public var input: String
    public var inputFormat: SourceFormat
    public var output: String
    public var outputFormat: DiskFormat

    public init(input: String, inputFormat: SourceFormat, output: String, outputFormat: DiskFormat) {
        self.input = input
        self.inputFormat = inputFormat
        self.output = output
        self.outputFormat = outputFormat
    }

    /// The input format from `from`, else IN's extension; the output format from `to`, else OUT's extension
    /// (qcow2 when it names none). Every problem at once, each naming the value and the allowed ones.
    public static func resolve(input: String, output: String, from: String?, to: String?)
        -> Result<ConvertPlan, ConvertProblems>
    {
        var problems: [ConvertError] = []
        var inputFormat: SourceFormat?
        if let from {
            inputFormat = SourceFormat(option: from)
            if inputFormat == nil { problems.append(.unknownSourceFormat(from)) }
        } else {
            inputFormat = SourceFormat.fromExtension(of: input)
            if inputFormat == nil { problems.append(.unknownInputExtension(path: input)) }
        }
        var outputFormat: DiskFormat?
        if let to {
            outputFormat = TargetFormats.parse(to)
            if outputFormat == nil { problems.append(.unknownTargetFormat(to)) }
        } else {
            outputFormat = TargetFormats.fromExtension(of: output)
            if outputFormat == nil { problems.append(.foreignOutputExtension(path: output)) }
        }
        guard let inputFormat, let outputFormat, problems.isEmpty else { return .failure(ConvertProblems(problems)) }
        return .success(ConvertPlan(input: input, inputFormat: inputFormat, output: output, outputFormat: outputFormat))
    }
}

/// Several problems with one command line, reported together.
public struct ConvertProblems: Error, Equatable, Sendable, CustomStringConvertible {
    public var problems: [ConvertError]
    public init(_ problems: [ConvertError]) { self.problems = problems }
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Path text without Foundation: the last component, its extension, its folder.
public enum PathText {
    /// `disk` for `/a/b/disk.vmdk`; the whole text when it has no slash.
    public static func lastComponent(_ path: String) -> Substring {
        let trimmed = path.hasSuffix("/") ? Substring(path.dropLast()) : Substring(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return trimmed[trimmed.index(after: slash)...]
    }

    /// Lower-case extension without the dot (`vmdk`); empty when the name has none (or only a leading dot).
    public static func fileExtension(_ path: String) -> String {
        let name = lastComponent(path)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return name[name.index(after: dot)...].lowercased()
    }

    /// The folder holding `path` (`.` for a bare name, `/` for a file in the root).
    public static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}
