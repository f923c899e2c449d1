import ArgumentParser
import DiskConversion

// `corral convert` runs qemu-img on this host: `corral` parses and validates the command line (so `--help`, bad
// formats and unknown extensions are answered here), then hands it to `corral-local`, which converts.

package struct ConvertArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("The disk image to convert: .vmdk (VMware), .vdi (VirtualBox), .vhdx or .vhd "
        + "(Hyper-V; .vhd is read as vpc), .qcow, .qed, .img or .raw (raw), .qcow2.", valueName: "IN"))
    package var input: String

    @Argument(help: ArgumentHelp("The image to write; it must not exist (see --force).", valueName: "OUT"))
    package var output: String

    @Option(name: .customLong("to"), help: ArgumentHelp(
        "Format to write (default: raw for .raw and .img, else qcow2).", valueName: "qcow2|raw"))
    package var to: String?

    @Option(name: .customLong("from"), help: ArgumentHelp(
        "IN's format, when its extension does not say: vmdk, vdi, vhdx, vpc (or vhd), qcow, qed, raw, qcow2. "
            + "qemu-img is never left to guess it.", valueName: "FORMAT"))
    package var from: String?

    @Flag(help: "Replace OUT when it exists (only once the new image is complete and checked).")
    package var force = false

    @Flag(help: "Print NDJSON: {\"progress\": …} lines, then one {\"result\": …} or {\"error\": …} line.")
    package var json = false

    package init() {}

    package func validate() throws {
        if case .failure(let problems) = resolved { throw ValidationError(problems.description) }
    }

    /// IN and OUT with their formats settled (from the options, else the names).
    package var resolved: Result<ConvertPlan, ConvertProblems> {
        ConvertPlan.resolve(input: input, output: output, from: from, to: to)
    }
}

package struct ConvertCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a VMware, VirtualBox, Hyper-V or older QEMU disk image to qcow2 or raw.",
        discussion: """
            Runs qemu-img convert with IN's format given explicitly (from --from or IN's extension; .vhd is vpc) \
            into a temporary file beside OUT. A qcow2 result must pass qemu-img check; only then is it renamed to \
            OUT. On a terminal a progress bar is redrawn in place; in a pipe a progress line is printed once a \
            second at most; --json prints NDJSON. On any failure, Ctrl-C or SIGTERM, qemu-img is stopped and the \
            temporary file removed: OUT is either complete or absent (with --force: the old OUT, untouched). \
            Images that refer to other files (a backing file, a qcow2 data file, VMDK extents outside IN's folder) \
            are refused. See docs/convert.md.

            Exit codes: 0 converted; 1 the conversion failed (qemu-img refused IN, the check found problems, I/O); \
            2 OUT exists (without --force) or is IN; 64 bad options or a format that cannot be told; 130 / 143 \
            interrupted by Ctrl-C / SIGTERM.
            """)

    @OptionGroup var arguments: ConvertArguments

    package init() {}

    package func run() throws { try Helper.local.forward(verb: "convert") }
}
