import CorralModel
import JSON
import QMP
import Profiles

/// Creates the disk images a profile asks for (`size` given, file missing) with qemu-img,
/// and removes exactly those again when the launch that needed them fails.
public struct DiskProvisioner: Sendable {
    public var qemuImg: String

    public init(qemuImg: String = "qemu-img") { self.qemuImg = qemuImg }

    public struct Failure: Error, CustomStringConvertible {
        public var disk: String
        public var file: String
        public var reason: String
        public var description: String { "disks.\(disk): cannot create \(file): \(reason)" }
    }

    /// Pure: which disks need an image created (a size to make it with, or a base image to make an overlay on).
    public static func missingImages(_ disks: [Disk], exists: (String) -> Bool) -> [Disk] {
        disks.filter { ($0.size != nil || $0.backing != nil) && !exists($0.file) }
    }

    /// Pure: `qemu-img create`'s arguments for a missing image: a qcow2 overlay on the base (`-b`, `-F`; the size
    /// only when given, else the base's), or a new image of `size`.
    public static func createArguments(_ disk: Disk) -> [String]? {
        if let backing = disk.backing {
            return ["create", "-q", "-f", "qcow2", "-b", backing, "-F", (disk.backingFormat ?? .qcow2).rawValue,
                    disk.file] + (disk.size.map { [String($0.bytes)] } ?? [])
        }
        guard let size = disk.size else { return nil }
        return ["create", "-q", "-f", disk.format.rawValue, disk.file, String(size.bytes)]
    }

    /// The format of an existing image, as `qemu-img info` reads it (for a base image whose format the profile does
    /// not say).
    public func format(of image: String) async throws(Failure) -> DiskFormat {
        let reply: JSONValue
        do { reply = try await info(of: image) } catch {
            throw Failure(disk: "backing", file: image, reason: error.reason)
        }
        guard let text = reply["format"]?.stringValue else {
            throw Failure(disk: "backing", file: image, reason: "qemu-img info names no format")
        }
        guard let format = DiskFormat(rawValue: text) else {
            throw Failure(disk: "backing", file: image, reason: "its format is \(text); corral reads qcow2 and raw "
                + "(convert it with qemu-img convert -O qcow2)")
        }
        return format
    }

    /// Creates every missing image; on any failure removes the ones it created and throws.
    /// Returns the paths it created so a later failure can undo them.
    public func createMissing(_ disks: [Disk]) async throws(Failure) -> [String] {
        var created: [String] = []
        for disk in DiskProvisioner.missingImages(disks, exists: FileOps.exists) {
            guard let arguments = DiskProvisioner.createArguments(disk) else { continue }
            let result: (status: ExitStatus, output: String)
            do {
                // A managed volume's folder (STATE/vms/NAME/disks) is made on first use.
                if let slash = disk.file.lastIndex(of: "/"), slash != disk.file.startIndex {
                    try? FileOps.makeFolder(String(disk.file[..<slash]))
                }
                result = try await ProcessLauncher.run(qemuImg, arguments)
            } catch {
                rollback(created)
                throw Failure(disk: disk.id, file: disk.file, reason: error.description)
            }
            guard result.status.isSuccess else {
                rollback(created)
                let detail = result.output.split(separator: "\n").last.map(String.init) ?? result.status.description
                throw Failure(disk: disk.id, file: disk.file, reason: detail)
            }
            created.append(disk.file)
        }
        return created
    }

    /// `qemu-img info --output=json -U` of an image (`-U`: a running QEMU may hold its lock); the reason, as one
    /// line, when it cannot be read.
    public func info(of image: String, format: DiskFormat? = nil) async throws(Failure) -> JSONValue {
        let result: (status: ExitStatus, output: String)
        let formatArguments = format.map { ["-f", $0.rawValue] } ?? []
        do { result = try await ProcessLauncher.run(qemuImg, ["info", "--output=json", "-U"] + formatArguments + [image]) } catch {
            throw Failure(disk: "", file: image, reason: "cannot run \(qemuImg): \(error)")
        }
        guard result.status.isSuccess, let reply = try? JSONValue(parsing: result.output) else {
            throw Failure(disk: "", file: image, reason: "qemu-img info failed: "
                + (result.output.split(separator: "\n").last.map(String.init) ?? result.status.description))
        }
        return reply
    }

    /// Runs `qemu-img` with `arguments` for `disk`'s image `file` (snapshot overlays, commits, rebases); its last
    /// line of output as the reason when it fails.
    public func run(_ arguments: [String], disk: String, file: String) async throws(Failure) {
        let result: (status: ExitStatus, output: String)
        do { result = try await ProcessLauncher.run(qemuImg, arguments) } catch {
            throw Failure(disk: disk, file: file, reason: "cannot run \(qemuImg): \(error)")
        }
        guard result.status.isSuccess else {
            throw Failure(disk: disk, file: file, reason: "qemu-img \(arguments.first ?? "") failed: "
                + (result.output.split(separator: "\n").last.map(String.init) ?? result.status.description))
        }
    }

    public func rollback(_ created: [String]) {
        for path in created { FileOps.remove(path) }
    }
}
