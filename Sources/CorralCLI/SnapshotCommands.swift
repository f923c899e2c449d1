import ArgumentParser
import CorralModel
import CorralWire

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "External disk snapshots: every writable disk at one instant (docs/provisioning.md).",
        subcommands: [SnapshotCreateCommand.self, SnapshotListCommand.self, SnapshotRevertCommand.self,
                      SnapshotRemoveCommand.self])
}

/// A VM and one of its snapshots, and how the answer is printed: what create, revert and rm share.
struct SnapshotTarget: ParsableArguments {
    @Argument(help: "VM name.") var name: String
    @Argument(help: "Snapshot name (\(SnapshotName.rule)).") var snapshot: String
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    /// Calls the daemon with the VM and snapshot names and prints its `SnapshotResult`.
    func perform(_ call: @Sendable (CorralClient, String, String) async throws -> SnapshotResult) async throws {
        let (name, snapshot) = (name, snapshot)
        let result = try await DaemonCall.run(socket: socket.resolved) { try await call($0, name, snapshot) }
        if json { return try JSONOutput.print(result) }
        for line in SnapshotText.result(result) { Terminal.out(line) }
    }
}

struct SnapshotCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Freeze every writable disk and go on in new overlays (live on a running VM, all disks at once).")

    @OptionGroup var target: SnapshotTarget

    func validate() throws {
        if !SnapshotName.isValid(target.snapshot) {
            throw ValidationError("'\(target.snapshot)' is not a valid snapshot name (\(SnapshotName.rule))")
        }
    }

    func run() async throws {
        try await target.perform { try await $0.createSnapshot($1, SnapshotCreateRequest(name: $2)) }
    }
}

struct SnapshotListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "A VM's snapshots, oldest first.")

    @Argument(help: "VM name.") var name: String
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var socket: DaemonSocketOption

    func run() async throws {
        let snapshots = try await DaemonCall.run(socket: socket.resolved) { try await $0.snapshots(name) }
        if json { return try JSONOutput.print(snapshots) }
        for line in SnapshotText.list(snapshots, vm: name) { Terminal.out(line) }
    }
}

struct SnapshotRevertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert",
        abstract: "Go back to a snapshot (stopped VM): later writes and later snapshots are discarded.")

    @OptionGroup var target: SnapshotTarget

    func run() async throws {
        try await target.perform { try await $0.revertSnapshot($1, snapshot: $2) }
    }
}

struct SnapshotRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove a snapshot: its overlay is committed into the image below (live or offline); data stays.")

    @OptionGroup var target: SnapshotTarget

    func run() async throws {
        try await target.perform { try await $0.removeSnapshot($1, snapshot: $2) }
    }
}

/// `corral snapshot` output as text.
enum SnapshotText {
    static func list(_ snapshots: [SnapshotInfo], vm: String) -> [String] {
        guard !snapshots.isEmpty else { return ["\(vm) has no snapshots"] }
        var rows = [["NAME", "CREATED", "DISKS"]]
        for snapshot in snapshots {
            rows.append([snapshot.name, TextFormat.localTimestamp(Double(snapshot.created)),
                         snapshot.disks.joined(separator: ",")])
        }
        return StatusText.aligned(rows)
    }

    static func result(_ result: SnapshotResult) -> [String] {
        let how = result.live ? " (live)" : ""
        let disks = result.disks.isEmpty ? "no disk" : "disks " + result.disks.joined(separator: ", ")
        var lines = ["\(result.vm): snapshot \(result.snapshot) \(result.action)\(how): \(disks)"]
        if !result.dropped.isEmpty {
            lines.append("later snapshots discarded: " + result.dropped.joined(separator: ", "))
        }
        if !result.untouched.isEmpty {
            lines.append("added after the snapshot, left as they are: " + result.untouched.joined(separator: ", "))
        }
        return lines
    }
}
