import CorralModel
import HostDevices
#if canImport(Glibc)
import Glibc
#endif

// corral-hostprep [PF-ADDRESS]: corral's host preparation run against this machine's own /sys, the way the daemon
// runs it for a `vf` device: scan, make VFs on the PF (autoprobe off), reserve the first free one, bind it to
// vfio-pci through driver_override (waiting for /dev/vfio/GROUP), check that a second holder is refused, give it
// back. Each step prints one `HOSTPREP …` line; the last is `HOSTPREP OK` or `HOSTPREP ERROR …` (exit 1).
// It is what the vIOMMU system test runs inside a guest (docs/devices.md); without a PF argument it takes the first
// device that can make VFs.

/// One line straight to the console (no stdio buffer to lose on exit).
func say(_ line: String) {
    let bytes = Array(("HOSTPREP " + line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func node(_ path: String) -> String {
    var info = stat()
    guard stat(path, &info) == 0 else { return "absent" }
    return (info.st_mode & S_IFMT) == S_IFCHR ? "char" : "not-a-char-device"
}

let tree = HostSysfsTree(root: "/")
do {
    let inventory = try PCIInventory.scan(tree)
    say("iommu units=\(inventory.iommuUnits.sorted().joined(separator: ",")) groups=\(inventory.hasIOMMUGroups) "
        + "devices=\(inventory.devices.count)")
    let wanted = CommandLine.arguments.dropFirst().first.flatMap { try? PCIAddress(parsing: $0) }
    guard let pf = wanted.flatMap({ inventory[$0] })
        ?? inventory.devices.values.sorted(by: { $0.address < $1.address }).first(where: { $0.sriov != nil }),
        let facts = pf.sriov
    else {
        say("ERROR no SR-IOV physical function on this machine")
        exit(1)
    }
    say("pf \(pf.address) driver=\(pf.driver ?? "none") group=\(pf.iommuGroup.map(String.init) ?? "none") "
        + "totalvfs=\(facts.totalVFs) numvfs=\(facts.numVFs)")

    let allocator = VFAllocator(tree: tree, netdevs: HostNetdevStateProbe(tree: tree))
    let reservation = try await allocator.reserve(from: .address(pf.address), createIfNone: 2, held: [:], for: "probe")
    let made = try PCIInventory.scan(tree)
    let vf = made[reservation.address]
    say("reserved vf=\(reservation.index) address=\(reservation.address) numvfs=\(made[pf.address]?.sriov?.numVFs ?? -1) "
        + "autoprobe=\(made[pf.address]?.sriov?.driversAutoprobe.map { $0 ? "1" : "0" } ?? "?") "
        + "vfdriver=\(vf?.driver ?? "none") physfn=\(vf?.physicalFunction?.description ?? "none") "
        + "group=\(vf?.iommuGroup.map(String.init) ?? "none")")

    let assignment = DeviceAssignment(tree: tree, binder: VFIOBinder(tree: tree))
    let records = try await assignment.assign([reservation.address], allFunctions: false, to: "probe", holders: [:])
    let bound = try PCIInventory.scan(tree)
    let group = records.first?.iommuGroup ?? -1
    say("bound address=\(reservation.address) driver=\(bound[reservation.address]?.driver ?? "none") "
        + "override=\(bound[reservation.address]?.driverOverride ?? "none") group=\(group) "
        + "node=\(node("/dev/vfio/\(group)")) container=\(node("/dev/vfio/vfio"))")

    do {
        _ = try await assignment.assign([reservation.address], allFunctions: false, to: "other",
                                        holders: [reservation.address: "probe"])
        say("ERROR a second VM was given the VF")
        exit(1)
    } catch {
        say("refused \(error.description)")
    }

    let failures = assignment.release(records)
    await allocator.release(reservation.address)
    let restored = try PCIInventory.scan(tree)
    say("released driver=\(restored[reservation.address]?.driver ?? "none") "
        + "override=\(restored[reservation.address]?.driverOverride ?? "none") node=\(node("/dev/vfio/\(group)")) "
        + "failures=\(failures.count)")
    say(failures.isEmpty ? "OK" : "ERROR " + failures.map(\.description).joined(separator: "; "))
    exit(failures.isEmpty ? 0 : 1)
} catch {
    say("ERROR \(error)")
    exit(1)
}
