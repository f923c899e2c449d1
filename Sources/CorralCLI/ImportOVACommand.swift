import ArgumentParser
import CorralModel

package struct ImportOVAArguments: ParsableArguments {
    @Argument(help: "An OVA package (a tar of an OVF descriptor and its disk images).")
    package var ova: String

    @OptionGroup package var target: ImportTargetOptions

    @Flag(help: "Overwrite NAME.yaml and the disk images when they exist.")
    package var force = false

    @Flag(help: "Print JSON (progress lines, then {profile, name, notes[], disks[]}) instead of text.")
    package var json = false

    package init() {}

    package var out: String? { target.out }
    package var name: String? { target.name }
    package var compat: Bool { target.compat }

    package func validate() throws {
        if ova.isEmpty { throw ValidationError("OVA must not be empty") }
    }
}

package struct ImportOVACommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "ova",
        abstract: "Write NAME.yaml and qcow2 disks from an OVA (VMware, VirtualBox), with a note for what is not carried.",
        discussion: """
            Reads the OVF descriptor inside the package, maps it (CPUs, memory, disks, NICs, firmware), converts \
            each disk image to qcow2 in OUT straight from the package (qemu-img reads it in place: nothing is \
            unpacked), checks it, then writes OUT/NAME.yaml. A failure or Ctrl-C leaves nothing behind. Exits 2 \
            when the package cannot be imported or a file exists (use --force).
            """)

    @OptionGroup var arguments: ImportOVAArguments

    package init() {}

    package func run() throws { try Helper.local.forward(verb: "import") }
}
