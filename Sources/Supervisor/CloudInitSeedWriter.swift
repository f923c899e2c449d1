import CorralCore
import Profiles
#if canImport(Glibc)
import Glibc
#endif

/// Builds a VM's cloud-init NoCloud seed (docs/provisioning.md): reads the profile's document files (each at most
/// 1 MiB), asks `CloudInitSeedPlan` for the files, and writes them onto an ISO 9660 volume labelled `cidata` with
/// xorriso (Joliet and Rock Ridge names), or a FAT one with mtools when xorriso is missing. The seed is replaced
/// atomically: a failure leaves the previous one.
public struct CloudInitSeedWriter: Sendable {
    public var xorriso: String
    public var mformat: String
    public var mcopy: String
    public static let maxDocument = 1 << 20

    public init(xorriso: String = "xorriso", mformat: String = "mformat", mcopy: String = "mcopy") {
        self.xorriso = xorriso
        self.mformat = mformat
        self.mcopy = mcopy
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// The profile field (`cloudInit.userData`) or `cloudInit` for the seed as a whole.
        public var field: String
        public var reason: String
        public var description: String { "\(field): \(reason)" }
    }

    /// Reads the documents, writes the seed to `path`; its instance-id.
    public func write(_ cloudInit: CloudInit, vmName: String, to path: String) async throws(Failure) -> String {
        let documents = CloudInitSeedPlan.Documents(
            userData: try Self.read(cloudInit.userData, field: "cloudInit.userData"),
            metaData: try Self.read(cloudInit.metaData, field: "cloudInit.metaData"),
            networkConfig: try Self.read(cloudInit.networkConfig, field: "cloudInit.networkConfig"))
        let seed = CloudInitSeedPlan.seed(cloudInit, vmName: vmName, documents: documents)
        let folder = path + ".d"
        FileOps.removeTree(folder)
        defer { FileOps.removeTree(folder) }
        do {
            try FileOps.makeFolder(folder)
            for file in seed.files { try FileOps.writeAtomically(file.content, to: folder + "/" + file.name, mode: 0o644) }
        } catch {
            throw Failure(field: "cloudInit", reason: "cannot stage the seed's files: \(error)")
        }
        let staged = path + ".new"
        FileOps.remove(staged)
        do {
            if HostProbe.findExecutable(xorriso) != nil {
                try await run(xorriso, ["-as", "mkisofs", "-quiet", "-output", staged, "-volid", "cidata", "-joliet",
                                        "-rock", folder])
            } else {
                // A FAT image a little larger than the files (at least 1 MiB), labelled CIDATA.
                let bytes = seed.files.reduce(0) { $0 + $1.content.utf8.count }
                let kib = max(1024, (bytes / 1024 + 1) * 2)
                try await run(mformat, ["-C", "-i", staged, "-v", "CIDATA", "-T", String(kib * 2), "-h", "2", "-s", "32", "::"])
                for file in seed.files {
                    try await run(mcopy, ["-i", staged, folder + "/" + file.name, "::" + file.name])
                }
            }
        } catch {
            FileOps.remove(staged)
            throw error
        }
        guard rename(staged, path) == 0 else {
            let reason = String(cString: strerror(errno))
            FileOps.remove(staged)
            throw Failure(field: "cloudInit", reason: "cannot put the seed at \(path): \(reason)")
        }
        return seed.instanceID
    }

    private func run(_ tool: String, _ arguments: [String]) async throws(Failure) {
        let result: (status: ExitStatus, output: String)
        do { result = try await ProcessLauncher.run(tool, arguments) } catch {
            throw Failure(field: "cloudInit", reason: "cannot run \(tool) (install xorriso, or mtools): \(error)")
        }
        guard result.status.isSuccess else {
            let detail = result.output.split(separator: "\n").last.map(String.init) ?? result.status.description
            throw Failure(field: "cloudInit", reason: "\(tool) failed building the seed: \(detail)")
        }
    }

    /// A document's text: inline as written, a file read whole (refused past `maxDocument`).
    static func read(_ source: CloudInitSource?, field: String) throws(Failure) -> String? {
        switch source {
        case nil: return nil
        case .inline(let text): return text
        case .file(let path):
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw Failure(field: field, reason: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else { throw Failure(field: field, reason: "\(path) is not a file") }
            guard info.st_size <= maxDocument else {
                throw Failure(field: field, reason: "\(path) is \(info.st_size) bytes; at most \(maxDocument) (1 MiB)")
            }
            do { return try FileOps.readText(path) ?? "" } catch {
                throw Failure(field: field, reason: "cannot read \(path): \(error)")
            }
        }
    }
}
