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

    /// Pure: which disks need an image created.
    public static func missingImages(_ disks: [Disk], exists: (String) -> Bool) -> [Disk] {
        disks.filter { $0.size != nil && !exists($0.file) }
    }

    /// Creates every missing image; on any failure removes the ones it created and throws.
    /// Returns the paths it created so a later failure can undo them.
    public func createMissing(_ disks: [Disk]) async throws(Failure) -> [String] {
        var created: [String] = []
        for disk in DiskProvisioner.missingImages(disks, exists: FileOps.exists) {
            guard let size = disk.size else { continue }
            let result: (status: ExitStatus, output: String)
            do {
                // A managed volume's folder (STATE/vms/NAME/disks) is made on first use.
                if let slash = disk.file.lastIndex(of: "/"), slash != disk.file.startIndex {
                    try? FileOps.makeFolder(String(disk.file[..<slash]))
                }
                result = try await ProcessLauncher.run(
                    qemuImg, ["create", "-q", "-f", disk.format.rawValue, disk.file, String(size.bytes)])
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

    public func rollback(_ created: [String]) {
        for path in created { FileOps.remove(path) }
    }
}
