import Foundation
import Import
import Testing

enum Fixtures {
    static let directory = Repository.root + "/Tests/ImportTests/Fixtures"

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
    }
}

/// libvirt's own reading of a domain: `virsh -c test:///default "define FILE; dumpxml NAME"`. The test driver runs
/// inside virsh (no daemon, nothing kept), and writes the domain back the way libvirt does: sizes in KiB, uuid,
/// clock, on_* actions, generated MACs and targets added.
enum Virsh {
    static let path = "/usr/bin/virsh"

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The XML virsh prints for the fixture `name` (or for `text` written to a temporary file).
    static func dump(fixture name: String) throws -> String {
        try dump(xml: Fixtures.text(name))
    }

    static func dump(xml: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Failure(description: "\(path) is missing: run scripts/install-deps (libvirt-clients)")
        }
        let root = try XMLDocument.parse(xml).root
        guard let name = root.child("name")?.trimmedText else { throw Failure(description: "no <name>") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("corral-import-\(UUID().uuidString).xml")
        try xml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-q", "-c", "test:///default", "define \(file.path); dumpxml \(name)"]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0, let start = text.range(of: "<domain") else {
            throw Failure(description: "virsh failed (\(process.terminationStatus)): "
                + String(decoding: errorData, as: UTF8.self) + text)
        }
        return String(text[start.lowerBound...])
    }
}

/// Imports and expects success.
func importDomain(_ xml: String, _ options: ImportOptions = ImportOptions(),
                  sourceLocation: SourceLocation = #_sourceLocation) -> ImportResult? {
    do throws(ImportError) {
        return try LibvirtImport.importDomain(xml, options: options)
    } catch {
        Issue.record("import failed: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Imports and expects a refusal.
func domainRefusal(_ xml: String, _ options: ImportOptions = ImportOptions()) -> ImportError? {
    do throws(ImportError) {
        _ = try LibvirtImport.importDomain(xml, options: options)
        return nil
    } catch {
        return error
    }
}
