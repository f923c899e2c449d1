import ArgumentParser
import CorralModel

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "The VMs' disk images: sizes, managed volumes, backing files.",
        subcommands: [VolumeListCommand.self], defaultSubcommand: VolumeListCommand.self)
}

struct VolumeListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "Every VM's disks with their virtual and allocated sizes (qemu-img info).")

    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let volumes = try await DaemonCall.run(socket: socket.resolved) { try await $0.volumes() }
        if json { return try JSONOutput.print(volumes) }
        for line in VolumeText.lines(volumes) { Terminal.out(line) }
    }
}

/// `corral volume ls` as text.
enum VolumeText {
    static func lines(_ volumes: [VolumeInfo]) -> [String] {
        guard !volumes.isEmpty else { return ["no volumes"] }
        var rows = [["VM", "ID", "FORMAT", "VIRTUAL", "ALLOCATED", "KIND", "FILE"]]
        for volume in volumes {
            let kind = volume.managed ? "managed" : volume.plugged ? "plugged" : "profile"
            let file = volume.file + (volume.backing.map { " (backing \($0))" } ?? "")
            rows.append([volume.vm, volume.id, volume.format, volume.virtualBytes.map(StatusText.bytes) ?? "-",
                         volume.allocatedBytes.map(StatusText.bytes) ?? "-", kind, file])
        }
        var lines = StatusText.aligned(rows)
        for volume in volumes {
            if let problem = volume.problem { lines.append("\(volume.vm)/\(volume.id): \(problem)") }
        }
        return lines
    }
}
