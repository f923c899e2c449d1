import ArgumentParser
import CorralModel

// `corral import` turns another tool's VM definition into a corral profile. The mapping (Import module) and the
// profile writer need the profile code a daemon client does not load, so `corral` parses the arguments here and
// `corral-local` does the work, like `check`.

package struct ImportCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Write a corral profile from another tool's VM definition (docs/import.md).",
        subcommands: [ImportLibvirtCommand.self, ImportOVACommand.self])

    package init() {}
}

/// What every importer takes about the profile it writes.
package struct ImportTargetOptions: ParsableArguments {
    @Option(help: "Folder to write NAME.yaml (and any converted disks) into (default: the current folder).")
    package var out: String?

    @Option(help: "The VM's name (default: the source's, made a valid corral name).")
    package var name: String?

    @Flag(help: "Put disks on NVMe and NICs on e1000e, which every guest OS drives without virtio drivers.")
    package var compat = false

    package init() {}

    package func validate() throws {
        if let name, !VMName.isValid(name) {
            throw ValidationError("--name '\(name)' is not a valid name (\(VMName.rule))")
        }
        if let out, out.isEmpty { throw ValidationError("--out must not be empty") }
    }
}

package struct ImportLibvirtArguments: ParsableArguments {
    @Argument(help: "A libvirt domain XML file (virsh dumpxml NAME > NAME.xml).")
    package var domain: String

    @OptionGroup package var target: ImportTargetOptions

    @Flag(help: "Convert disk images in other formats (vmdk, vdi, vhdx, vpc, qcow, qed) to qcow2 beside them first.")
    package var convert = false

    @Flag(help: "Overwrite NAME.yaml (and, with --convert, the converted images) when they exist.")
    package var force = false

    @Flag(help: "Print a JSON object {profile, name, notes[], disks[]} instead of text.")
    package var json = false

    package init() {}

    package var out: String? { target.out }
    package var name: String? { target.name }
    package var compat: Bool { target.compat }
}

package struct ImportLibvirtCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "libvirt",
        abstract: "Write NAME.yaml from a libvirt domain's XML, with a note for everything the profile does not carry.",
        discussion: """
            Reads the domain XML (virsh dumpxml NAME), writes OUT/NAME.yaml and prints every note: the XPath of
            what the profile does not carry as it was, what it was, and what corral does instead. Disk images
            stay where they are; images in formats other than qcow2 and raw need `corral convert` first.
            Exits 2 when the XML cannot be imported (FILE:LINE:COL: XPATH: problem) or NAME.yaml exists
            (use --force).
            """)

    @OptionGroup var arguments: ImportLibvirtArguments

    package init() {}

    package func run() throws { try Helper.local.forward(verb: "import") }
}
