import ArgumentParser
import CorralCLI
import CorralModel
import DiskConversion
import Foundation
import Import
import Supervisor

#if canImport(Glibc)
import Glibc
#endif

/// `corral import ova`, done: the package's members listed (TarReader, reading the file in place), its OVF mapped
/// (OVFImport), each disk converted to qcow2 beside the profile straight out of the package (DiskConverter on an
/// archive member), then the profile written. Anything made is removed again when a later step fails.
struct LocalImportOVA: AsyncParsableCommand {
    static let configuration = ImportOVACommand.configuration

    @OptionGroup var arguments: ImportOVAArguments

    /// An OVF descriptor is a few KiB; this is far more.
    static let maxDescriptor = 4 << 20

    func run() async throws {
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        defer { signals.cancel() }
        let ova = arguments.ova
        func refuse(_ reason: String) -> ExitCode {
            Terminal.err("\(ImportNote.printable(ova)): \(ImportNote.printable(reason))")
            return ExitCode(ExitCodeValue.invalid.rawValue)
        }
        let archive = try OVAFile(path: ova)
        defer { archive.close() }
        let members: [TarMember]
        do { members = try archive.members() } catch { throw refuse("not a readable OVA (tar): \(error)") }
        let descriptor: TarMember
        do { descriptor = try OVAPackage.envelope(in: members) } catch { throw refuse(error.message) }
        guard descriptor.size <= UInt64(Self.maxDescriptor) else {
            throw refuse("\(descriptor.name) is \(descriptor.size) bytes; at most \(Self.maxDescriptor >> 20) MiB are read")
        }
        let bytes: [UInt8]
        do { bytes = try archive.read(at: descriptor.dataOffset, count: Int(descriptor.size)) } catch {
            throw refuse("cannot read \(descriptor.name): \(error)")
        }
        guard let xml = String(validating: bytes, as: UTF8.self) else { throw refuse("\(descriptor.name) is not UTF-8 text") }
        let result: ImportResult
        do {
            result = try OVFImport.importEnvelope(xml, options: ImportOptions(compat: arguments.compat,
                                                                                name: arguments.name))
        } catch {
            Terminal.err("\(ImportNote.printable(ova))/\(ImportNote.printable(descriptor.name)):"
                + ImportNote.printable(error.description))
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }

        // Where each disk comes from, checked before anything is written.
        let folder = arguments.out ?? "."
        var jobs: [(disk: ImportedDisk, member: TarMember, output: String)] = []
        let diskMembers: [TarMember]
        do { diskMembers = try OVAPackage.diskMembers(for: result, in: members) } catch { throw refuse(error.message) }
        for (disk, member) in zip(result.disks, diskMembers) {
            guard disk.format.lowercased().contains("vmdk") || disk.format.isEmpty else {
                throw refuse("disk \(disk.id): format \(disk.format) is not a VMDK; corral reads VMDK disks from OVAs")
            }
            let relative = result.profile.disks[disk.profileIndex].file
            let output = relative.hasPrefix("/") ? relative : (folder.hasSuffix("/") ? folder : folder + "/") + relative
            if FileOps.exists(output) && !arguments.force {
                throw refuse("\(output) exists; remove it or use --force to replace it")
            }
            jobs.append((disk, member, output))
        }
        let profilePath = (folder.hasSuffix("/") ? folder : folder + "/") + result.profile.name + ".yaml"
        if FileOps.exists(profilePath) && !arguments.force {
            throw refuse("\(profilePath) exists; remove it or use --force to replace it")
        }

        var made: [String] = []
        for job in jobs {
            let source = DiskSource.archiveMember(archive: archive.absolutePath, offset: job.member.dataOffset,
                                                  size: job.member.size, format: .vmdk)
            do {
                try await ImportConversion.run(source, to: job.output, label: "\(job.disk.id) (\(job.member.name))",
                                               json: arguments.json, replace: arguments.force, signals: signals)
            } catch {
                for path in made { FileOps.remove(path) }
                throw error
            }
            made.append(job.output)
        }
        let header = ["Imported by `corral import ova\(arguments.compat ? " --compat" : "")` from \(ova)."]
            + (result.notes.isEmpty ? [] : ["", "Not carried as it was (XPath: what — what corral did):"]
                + result.notes.map { "  " + $0.description })
        var converted = result
        // The images are qcow2 now: the profile must say so, and nothing is left to convert.
        for index in converted.disks.indices {
            converted.disks[index].profileFormat = .qcow2
            converted.profile.disks[converted.disks[index].profileIndex].format = .qcow2
        }
        do {
            try ImportOutput.write(converted, header: header, from: ova, out: arguments.out, force: arguments.force,
                                   json: arguments.json)
        } catch {
            for path in made { FileOps.remove(path) }
            throw error
        }
    }
}

/// One disk converted to qcow2 for an import, with a progress bar; Ctrl-C cancels it (the converter stops qemu-img
/// and removes its temporary file).
enum ImportConversion {
    static func run(_ source: DiskSource, to output: String, label: String, json: Bool, replace: Bool,
                    signals: SignalWatcher) async throws {
        let (outcome, signal) = await ConversionRun.perform(source, to: output, format: .qcow2, replace: replace,
                                                            label: label, json: json, signals: signals)
        switch outcome {
        case .success(let result):
            if !json { Terminal.out(result.summary) }
        case .failure(let error):
            Terminal.err("error: \(error.description)")
            if let number = signal { throw ExitCode(128 + number) }
            throw ExitCode(error.isInvalidInput ? ExitCodeValue.invalid.rawValue : ExitCodeValue.failure.rawValue)
        }
    }
}

/// An OVA file opened once for reading its tar headers and the descriptor (`pread`, nothing unpacked).
final class OVAFile {
    let fd: Int32
    let size: UInt64
    let absolutePath: String

    init(path: String) throws {
        func refuse(_ reason: String) -> ExitCode {
            Terminal.err("\(ImportNote.printable(path)): \(reason)")
            return ExitCode(ExitCodeValue.invalid.rawValue)
        }
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw refuse("cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            throw refuse("not a regular file")
        }
        size = UInt64(info.st_size)
        absolutePath = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            done += got
        }
        return Array(bytes[..<done])
    }

    func members() throws -> [TarMember] {
        try TarReader.members(archiveSize: size) { offset, count in try self.read(at: offset, count: count) }
    }

    func close() { Glibc.close(fd) }
}
