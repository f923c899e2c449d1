import CorralModel
import JSON

/// Where the disk to convert is.
///
/// `.archiveMember` reads a disk stored inside another file (a tar archive such as an OVA) in place: qemu-img's
/// `raw` driver with `offset` and `size` exposes exactly the member's bytes, and the format driver reads those. The
/// archive is never unpacked, so a 40 GiB OVA needs no 40 GiB of scratch space.
public enum DiskSource: Sendable, Hashable {
    /// A disk image file in `format`.
    case file(path: String, format: SourceFormat)
    /// `size` bytes at byte `offset` of `archive` (for a tar member: the offset of its data, after its header) are
    /// a disk image in `format`.
    case archiveMember(archive: String, offset: UInt64, size: UInt64, format: SourceFormat)

    public var format: SourceFormat {
        switch self {
        case .file(_, let format), .archiveMember(_, _, _, let format): return format
        }
    }

    /// The file corral opens: the image itself, or the archive holding it.
    public var path: String {
        switch self {
        case .file(let path, _), .archiveMember(let path, _, _, _): return path
        }
    }

    /// How messages name it: `disk.vmdk`, or `disk.ova (bytes 1536…133631)`.
    public var displayName: String {
        switch self {
        case .file(let path, _): return path
        case .archiveMember(let archive, let offset, let size, _):
            return "\(archive) (bytes \(offset)…\(size == 0 ? offset : offset + size - 1))"
        }
    }

    /// The image name qemu-img gets for this source (with `-f format`, always).
    ///
    /// A file is its path, `./`-prefixed when relative, so that a name such as `nbd:x` or `json:{…}` is never taken
    /// for one of QEMU's protocol prefixes. An archive member is a `json:` image spec built with the JSON encoder
    /// (never by pasting the path into option syntax): `json:{"driver":"vmdk","file":{"driver":"raw","offset":N,
    /// "size":M,"file":{"driver":"file","filename":PATH}}}`.
    public var qemuImageName: String {
        switch self {
        case .file(let path, _): return QemuImg.plainName(path)
        case .archiveMember(let archive, let offset, let size, let format):
            return "json:" + Self.memberSpec(archive: archive, offset: offset, size: size, format: format).compactText
        }
    }

    /// The blockdev tree for a member: format driver over a `raw` window over the archive file.
    public static func memberSpec(archive: String, offset: UInt64, size: UInt64, format: SourceFormat) -> JSONValue {
        let fileNode: JSONValue = ["driver": "file", "filename": .string(archive)]
        let window: JSONValue = [
            "driver": "raw", "offset": .int(Int64(clamping: offset)), "size": .int(Int64(clamping: size)),
            "file": fileNode,
        ]
        return ["driver": .string(format.rawValue), "file": window]
    }

    /// Pure: the problem with a member's window on an archive of `archiveSize` bytes, if any (empty, past the end,
    /// beyond what QEMU's offsets hold).
    public func windowProblem(archiveSize: UInt64) -> ConvertError? {
        guard case .archiveMember(let archive, let offset, let size, _) = self else { return nil }
        let limit = UInt64(Int64.max)
        if size == 0 { return .memberOutOfRange(archive: archive, offset: offset, size: size, archiveSize: archiveSize) }
        let (end, overflow) = offset.addingReportingOverflow(size)
        if overflow || end > archiveSize || end > limit {
            return .memberOutOfRange(archive: archive, offset: offset, size: size, archiveSize: archiveSize)
        }
        return nil
    }
}

/// qemu-img's argument lists. Pure: the process runs elsewhere (`DiskConverter` in Supervisor).
public enum QemuImg {
    /// A path as qemu-img must see it: `./`-prefixed when relative, so no protocol prefix (`nbd:`, `json:`) is read
    /// into it.
    public static func plainName(_ path: String) -> String {
        path.hasPrefix("/") || path.hasPrefix("./") || path.hasPrefix("../") ? path : "./" + path
    }

    /// `qemu-img info` of the source, as JSON, its format given: how big it is, what it refers to.
    public static func infoArguments(_ source: DiskSource) -> [String] {
        ["info", "--output=json", "-f", source.format.rawValue, source.qemuImageName]
    }

    /// `qemu-img convert` with progress (`-p`), the source format given (`-f`) and the target's (`-O`).
    public static func convertArguments(_ source: DiskSource, to output: String, format: DiskFormat) -> [String] {
        ["convert", "-p", "-f", source.format.rawValue, "-O", format.rawValue, source.qemuImageName,
         plainName(output)]
    }

    /// `qemu-img measure`: how much room the converted image will take (`required`), as JSON.
    public static func measureArguments(_ source: DiskSource, format: DiskFormat) -> [String] {
        ["measure", "--output=json", "-f", source.format.rawValue, "-O", format.rawValue, source.qemuImageName]
    }

    /// Pure: refuse before converting when the output's folder has less room than qemu-img measured (its
    /// `required`); nil when it fits or the measure says nothing.
    public static func spaceProblem(measure: JSONValue, availableBytes: UInt64, output: String) -> ConvertError? {
        guard let required = measure["required"]?.intValue, required > 0 else { return nil }
        guard UInt64(required) > availableBytes else { return nil }
        return .notEnoughSpace(path: output, needed: UInt64(required), available: availableBytes)
    }

    /// `qemu-img check` of a qcow2 image, as JSON.
    public static func checkArguments(_ image: String) -> [String] {
        ["check", "--output=json", "-f", DiskFormat.qcow2.rawValue, plainName(image)]
    }

    /// The reason in qemu-img's last error line, without its `qemu-img: ` prefix and the `Could not open 'NAME': `
    /// prefixes it adds for the image (once per layer), so the message names the file once, in the caller's words.
    public static func reason(in output: String, imageName: String) -> String? {
        let lines = output.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingSpaces() }
            .filter { !$0.isEmpty && !QemuImgProgress.isProgress($0) }
        guard let last = lines.last else { return nil }
        var line = Substring(last)
        if line.hasPrefix("qemu-img: ") { line = line.dropFirst("qemu-img: ".count) }
        while line.hasPrefix("Could not open '") {
            let rest = line.dropFirst("Could not open '".count)
            if rest.hasPrefix(imageName + "': ") {
                line = rest.dropFirst(imageName.count + 3)
            } else if let end = rest.range(of: "': ") {
                line = rest[end.upperBound...]
            } else {
                break
            }
        }
        return String(line)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return String(text)
    }

    func range(of needle: String) -> Range<Index>? {
        guard !needle.isEmpty else { return nil }
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(needle) {
                return start..<index(start, offsetBy: needle.count)
            }
            start = index(after: start)
        }
        return nil
    }
}
