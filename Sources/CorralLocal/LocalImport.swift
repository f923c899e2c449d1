import ArgumentParser
import CorralCLI
import DiskConversion
import Glibc
import Import
import JSON
import Profiles
import Supervisor

/// `corral import`, done here: reads the document, maps it (Import), writes the profile atomically.
struct LocalImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: ImportCommand.configuration.abstract,
        subcommands: [LocalImportLibvirt.self, LocalImportOVA.self])
}

struct LocalImportLibvirt: AsyncParsableCommand {
    static let configuration = ImportLibvirtCommand.configuration

    @OptionGroup var arguments: ImportLibvirtArguments

    func run() async throws {
        let file = arguments.domain
        let xml = try ImportInput.read(file, limit: XMLLimits.standard.bytes)
        let mapped: ImportResult
        do {
            mapped = try LibvirtImport.importDomain(xml, options: ImportOptions(compat: arguments.compat,
                                                                                  name: arguments.name))
        } catch {
            Terminal.err("\(file):\(ImportNote.printable(error.description))")
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
        let result = arguments.convert ? try await convertDisks(mapped) : mapped
        let header = ["Imported by `corral import libvirt\(arguments.compat ? " --compat" : "")` from \(file)."]
            + (result.notes.isEmpty ? [] : ["", "Not carried as it was (XPath: what — what corral did):"]
                + result.notes.map { "  " + $0.description })
        try ImportOutput.write(result, header: header, from: file, out: arguments.out, force: arguments.force,
                               json: arguments.json)
    }
}

extension LocalImportLibvirt {
    /// `--convert`: each image in another format becomes the qcow2 the profile names (beside it); a failure removes
    /// the ones already made.
    func convertDisks(_ result: ImportResult) async throws -> ImportResult {
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM])
        defer { signals.cancel() }
        var converted = result
        var made: [String] = []
        for (index, disk) in result.disks.enumerated() where disk.needsConversion {
            guard let format = SourceFormat(option: disk.format) else {
                for path in made { FileOps.remove(path) }
                Terminal.err("\(disk.source): corral cannot convert format '\(disk.format)' (it reads "
                    + SourceFormat.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                throw ExitCode(ExitCodeValue.invalid.rawValue)
            }
            let output = result.profile.disks[disk.profileIndex].file
            do {
                try await ImportConversion.run(.file(path: disk.source, format: format), to: output,
                                               label: disk.id, json: arguments.json, replace: arguments.force,
                                               signals: signals)
            } catch {
                for path in made { FileOps.remove(path) }
                throw error
            }
            made.append(output)
            converted.disks[index].profileFormat = .qcow2
            converted.profile.disks[disk.profileIndex].format = .qcow2
        }
        return converted
    }
}

enum ImportInput {
    /// The file's text: a regular file of at most `limit` bytes, UTF-8. Exits 2 naming the file otherwise.
    static func read(_ path: String, limit: Int) throws -> String {
        func refuse(_ reason: String) -> ExitCode {
            Terminal.err("\(path): \(reason)")
            return ExitCode(ExitCodeValue.invalid.rawValue)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw refuse("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw refuse("cannot stat: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw refuse("not a regular file") }
        guard info.st_size <= limit else {
            throw refuse("\(info.st_size) bytes; at most \(limit / (1 << 20)) MiB are read")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= limit {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw refuse("cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        guard bytes.count <= limit else { throw refuse("more than \(limit / (1 << 20)) MiB") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw refuse("not UTF-8 text") }
        return text
    }
}

enum ImportOutput {
    /// Writes `OUT/NAME.yaml` (refusing to replace one without `force`) and prints what was written and every note.
    static func write(_ result: ImportResult, header: [String], from source: String, out: String?, force: Bool,
                      json: Bool) throws {
        let folder = out ?? "."
        let path = (folder.hasSuffix("/") ? folder : folder + "/") + result.profile.name + ".yaml"
        if FileOps.exists(path) && !force {
            Terminal.err("\(path) exists; remove it or use --force to replace it")
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
        let yaml = ProfileYAMLWriter.render(result.profile, header: header)
        do {
            try FileOps.writeAtomically(yaml, to: path, mode: 0o644)
        } catch {
            Terminal.err("error: cannot write \(path): \(error)")
            throw ExitCode(ExitCodeValue.failure.rawValue)
        }
        if json {
            Terminal.out(document(result, path: path).prettyText)
            return
        }
        let profile = result.profile
        Terminal.out("wrote \(ImportNote.printable(path)) (\(profile.name): \(profile.cpu.count)/\(profile.cpu.max) vCPUs, "
            + "\(profile.memory.size) RAM, \(profile.disks.count) disks, \(profile.nics.count) NICs)")
        for disk in result.disks where disk.needsConversion {
            Terminal.out(ImportNote.printable("convert \(disk.source) (\(disk.format)) to "
                + "\(profile.disks[disk.profileIndex].file) first"))
        }
        if !result.notes.isEmpty {
            Terminal.out("\(result.notes.count) note\(result.notes.count == 1 ? "" : "s") (\(source)):")
            for note in result.notes { Terminal.out("  \(note.description)") }
        }
    }

    /// `{profile, name, notes: [{path, line, what, action}], disks: [{id, source, format, profileFormat,
    /// needsConversion, file}]}`.
    static func document(_ result: ImportResult, path: String) -> JSONValue {
        let notes: [JSONValue] = result.notes.map {
            ["path": .string($0.path), "line": .int(Int64($0.line)), "what": .string($0.what),
             "action": .string($0.action)]
        }
        let disks: [JSONValue] = result.disks.map { disk in
            var object: JSONValue = [
                "id": .string(disk.id), "source": .string(disk.source), "format": .string(disk.format),
                "file": .string(result.profile.disks[disk.profileIndex].file),
                "needsConversion": .bool(disk.needsConversion),
            ]
            object["profileFormat"] = disk.profileFormat.map { .string($0.rawValue) } ?? .null
            if let capacity = disk.capacity { object["capacity"] = .int(Int64(clamping: capacity.bytes)) }
            return object
        }
        return ["profile": .string(path), "name": .string(result.profile.name), "notes": .array(notes),
                "disks": .array(disks)]
    }
}
