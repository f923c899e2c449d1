/// Why a conversion did not happen. Each case carries the values its message names; `description` is one line
/// that says which file, what is wrong, and (where there is one) what to do. `code` is stable for `--json`.
public enum ConvertError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `--from` names no format corral reads.
    case unknownSourceFormat(String)
    /// `--to` names no format corral writes.
    case unknownTargetFormat(String)
    /// No `--from`, and IN's extension names no format.
    case unknownInputExtension(path: String)
    /// No `--to`, and OUT's extension names a format corral does not write (`out.vmdk`).
    case foreignOutputExtension(path: String)
    case missing(path: String)
    case unreadable(path: String, reason: String)
    case notAFile(path: String)
    case sameFile(input: String, output: String)
    case outputExists(path: String)
    /// OUT's folder is missing or corral cannot write there.
    case outputFolder(path: String, reason: String)
    /// OUT's filesystem has less room than the converted image needs (`qemu-img measure`).
    case notEnoughSpace(path: String, needed: UInt64, available: UInt64)
    /// An archive member's window does not fit in its archive.
    case memberOutOfRange(archive: String, offset: UInt64, size: UInt64, archiveSize: UInt64)
    /// qemu-img cannot open the source as the format it was given (its own reason).
    case refused(path: String, format: SourceFormat, reason: String)
    /// The source refers to other files (backing file, data file, VMDK extents elsewhere).
    case notSelfContained(path: String, reason: String)
    /// qemu-img convert failed (its reason, or how it ended).
    case conversionFailed(path: String, reason: String)
    /// `qemu-img check` found problems in the new qcow2 (it was not kept).
    case checkFailed(path: String, report: CheckReport)
    /// `qemu-img check` could not be run or read.
    case checkUnreadable(path: String, reason: String)
    /// SIGINT, SIGTERM, or the caller's task was cancelled.
    case interrupted(output: String, reason: String)
    case cannotRun(executable: String, reason: String)
    /// Writing the result in place (sync, rename) failed.
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownSourceFormat(let given):
            return "--from: '\(given)' is not a format corral converts from; use one of: \(SourceFormat.allowedList)"
        case .unknownTargetFormat(let given):
            return "--to: '\(given)' is not a format corral converts to; use one of: \(TargetFormats.allowedList)"
        case .unknownInputExtension(let path):
            let ext = PathText.fileExtension(path)
            let what = ext.isEmpty ? "has no extension" : "ends in .\(ext)"
            return "\(path): \(what), which names no disk format; give --from with one of: \(SourceFormat.allowedList)"
        case .foreignOutputExtension(let path):
            return "\(path): ends in .\(PathText.fileExtension(path)) but corral writes only qcow2 and raw; "
                + "name it .qcow2, .raw or .img, or give --to qcow2|raw"
        case .missing(let path):
            return "\(path): no such file"
        case .unreadable(let path, let reason):
            return "\(path): cannot read it: \(reason)"
        case .notAFile(let path):
            return "\(path): is not a regular file (a folder or a device?)"
        case .sameFile(let input, let output):
            return input == output ? "\(input): the input and the output are the same file"
                : "\(output): is the input \(input) itself; write to another file"
        case .outputExists(let path):
            return "\(path): already exists; give --force to replace it"
        case .outputFolder(let path, let reason):
            return "\(path): cannot write there: \(reason)"
        case .notEnoughSpace(let path, let needed, let available):
            return "\(path): needs \(SizeText.binary(needed)) but its filesystem has \(SizeText.binary(available)) free; "
                + "make room or write elsewhere"
        case .memberOutOfRange(let archive, let offset, let size, let archiveSize):
            return "\(archive): a member of \(size) bytes at offset \(offset) does not fit in the archive "
                + "(\(archiveSize) bytes)"
        case .refused(let path, let format, let reason):
            return "\(path): qemu-img cannot open it as \(format.rawValue): \(reason)"
        case .notSelfContained(let path, let reason):
            return "\(path): not converted: \(reason); corral converts only self-contained images"
        case .conversionFailed(let path, let reason):
            return "\(path): conversion failed: \(reason)"
        case .checkFailed(let path, let report):
            return "\(path): qemu-img check found \(report.findings) in the new image; it was not kept"
        case .checkUnreadable(let path, let reason):
            return "\(path): qemu-img check of the new image failed: \(reason); it was not kept"
        case .interrupted(let output, let reason):
            return "\(output): not written: \(reason); nothing was left behind"
        case .cannotRun(let executable, let reason):
            return "cannot run \(executable): \(reason)"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        }
    }

    /// A stable name for scripts (`--json`'s `error.code`).
    public var code: String {
        switch self {
        case .unknownSourceFormat: return "unknown-source-format"
        case .unknownTargetFormat: return "unknown-target-format"
        case .unknownInputExtension: return "unknown-input-extension"
        case .foreignOutputExtension: return "foreign-output-extension"
        case .missing: return "missing"
        case .unreadable: return "unreadable"
        case .notAFile: return "not-a-file"
        case .sameFile: return "same-file"
        case .outputExists: return "output-exists"
        case .outputFolder: return "output-folder"
        case .notEnoughSpace: return "no-space"
        case .memberOutOfRange: return "member-out-of-range"
        case .refused: return "refused"
        case .notSelfContained: return "not-self-contained"
        case .conversionFailed: return "conversion-failed"
        case .checkFailed: return "check-failed"
        case .checkUnreadable: return "check-unreadable"
        case .interrupted: return "interrupted"
        case .cannotRun: return "cannot-run"
        case .io: return "io"
        }
    }

    /// Usage problems (exit 2) as opposed to failures of the conversion itself (exit 1).
    public var isInvalidInput: Bool {
        switch self {
        case .unknownSourceFormat, .unknownTargetFormat, .unknownInputExtension, .foreignOutputExtension, .sameFile,
             .outputExists:
            return true
        default:
            return false
        }
    }
}
