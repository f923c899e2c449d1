import JSON

/// What `qemu-img info --output=json` says about a source, and whether corral converts it.
///
/// A foreign image can point at other files: a qcow2, qcow or qed backing file, a qcow2 external data file, the
/// extents a VMware descriptor lists. Converting such an image would copy whatever those name (any file the user can
/// read) into the new disk, so corral converts only self-contained images: no backing file, no data file, and VMDK
/// extents that are files beside the descriptor (for an archive member: a single-file VMDK).
public struct ImageInspection: Sendable, Equatable {
    public var virtualSize: UInt64
    /// The format qemu-img opened it as (always the one given with `-f`).
    public var format: String
    /// VMDK only: the descriptor's `createType` (`monolithicSparse`, `streamOptimized`, `monolithicFlat`, …).
    public var vmdkCreateType: String?

    public init(virtualSize: UInt64, format: String, vmdkCreateType: String? = nil) {
        self.virtualSize = virtualSize
        self.format = format
        self.vmdkCreateType = vmdkCreateType
    }

    /// VMDK kinds that are one file (what an archive member must be).
    public static let singleFileVMDK: Set<String> = ["monolithicSparse", "streamOptimized"]

    public static func inspect(_ info: JSONValue, source: DiskSource) -> Result<ImageInspection, ConvertError> {
        let name = source.displayName
        guard let size = info["virtual-size"]?.intValue, size >= 0 else {
            return .failure(.unreadable(path: name, reason: "qemu-img info reports no virtual size"))
        }
        if let backing = info["backing-filename"]?.stringValue ?? info["full-backing-filename"]?.stringValue {
            return .failure(.notSelfContained(path: name, reason: "it is an overlay on a backing file (\(backing))"))
        }
        let specific = info["format-specific"]?["data"]
        if let dataFile = specific?["data-file"]?.stringValue {
            return .failure(.notSelfContained(path: name, reason: "its data is in an external file (\(dataFile))"))
        }
        var createType: String?
        if source.format == .vmdk {
            createType = specific?["create-type"]?.stringValue
            switch source {
            case .archiveMember:
                guard let kind = createType, singleFileVMDK.contains(kind) else {
                    return .failure(.notSelfContained(
                        path: name, reason: "a VMDK inside an archive must be one file (monolithicSparse or "
                            + "streamOptimized), this one is \(createType ?? "of an unknown kind")"))
                }
            case .file(let path, _):
                let folder = PathText.folder(of: QemuImg.plainName(path))
                for extent in specific?["extents"]?.arrayValue ?? [] {
                    guard let file = extent["filename"]?.stringValue else { continue }
                    if !isBeside(file, folder: folder, descriptor: QemuImg.plainName(path)) {
                        return .failure(.notSelfContained(
                            path: name, reason: "its descriptor names an extent outside its folder (\(file))"))
                    }
                }
            }
        }
        return .success(ImageInspection(virtualSize: UInt64(size), format: info["format"]?.stringValue ?? "",
                                        vmdkCreateType: createType))
    }

    /// An extent is the descriptor itself or a file directly in the descriptor's folder (no `/` after the folder:
    /// no `..`, no subfolder, no protocol or `json:` name).
    static func isBeside(_ file: String, folder: String, descriptor: String) -> Bool {
        if file == descriptor { return true }
        let prefix = folder == "/" ? "/" : folder + "/"
        guard file.hasPrefix(prefix) else { return false }
        let rest = file.dropFirst(prefix.count)
        return !rest.isEmpty && !rest.contains("/") && rest != "." && rest != ".."
    }
}

/// `qemu-img check --output=json` of a new qcow2: what it found.
public struct CheckReport: Sendable, Equatable, Codable {
    public var corruptions: Int64
    public var leaks: Int64
    /// Errors that stopped the check itself (I/O errors reading the image).
    public var checkErrors: Int64
    public var allocatedClusters: Int64?
    public var totalClusters: Int64?

    public init(corruptions: Int64 = 0, leaks: Int64 = 0, checkErrors: Int64 = 0, allocatedClusters: Int64? = nil,
                totalClusters: Int64? = nil) {
        self.corruptions = corruptions
        self.leaks = leaks
        self.checkErrors = checkErrors
        self.allocatedClusters = allocatedClusters
        self.totalClusters = totalClusters
    }

    /// Absent counts are zero: qemu-img leaves out `corruptions` and `leaks` when there are none.
    public init?(_ json: JSONValue) {
        guard json.objectValue != nil else { return nil }
        self.init(corruptions: json["corruptions"]?.intValue ?? 0, leaks: json["leaks"]?.intValue ?? 0,
                  checkErrors: json["check-errors"]?.intValue ?? 0,
                  allocatedClusters: json["allocated-clusters"]?.intValue,
                  totalClusters: json["total-clusters"]?.intValue)
    }

    public var isClean: Bool { corruptions == 0 && leaks == 0 && checkErrors == 0 }

    /// `2 corruptions, 1 leaked cluster`; empty when clean.
    public var findings: String {
        var parts: [String] = []
        if corruptions > 0 { parts.append(Self.count(corruptions, "corruption")) }
        if leaks > 0 { parts.append(Self.count(leaks, "leaked cluster")) }
        if checkErrors > 0 { parts.append(Self.count(checkErrors, "check error")) }
        return parts.joined(separator: ", ")
    }

    static func count(_ n: Int64, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}
