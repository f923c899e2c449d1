import ArgumentParser

public struct Corral: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "corral",
        abstract: "Declarative QEMU/KVM VMs: profiles, supervision, hotplug, overcommit, migration.",
        subcommands: []
    )
    public init() {}
}
