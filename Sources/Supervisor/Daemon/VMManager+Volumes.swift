import CorralModel
import JSON
import Profiles

/// `corral volume ls`: each VM's disks, their images as `qemu-img info` sees them.
extension VMManager {
    public func volumes() async throws(ControlError) -> [VolumeInfo] {
        var volumes: [VolumeInfo] = []
        for name in vms.keys.sorted() {
            guard let vm = vms[name] else { continue }
            let config = await vm.config
            let folder = vm.paths.folder + "/disks/"
            let disks = config.profile.disks.map { ($0, false) } + config.hotplugged.disks.map { ($0.disk, true) }
            for (disk, plugged) in disks {
                var info = VolumeInfo(vm: name, id: disk.id, file: disk.file, format: disk.format.rawValue,
                                      managed: disk.file.hasPrefix(folder), plugged: plugged)
                await measure(&info)
                volumes.append(info)
            }
        }
        return volumes
    }

    /// Sizes and backing file from `qemu-img info` (`DiskProvisioner.info`).
    private func measure(_ info: inout VolumeInfo) async {
        guard FileOps.exists(info.file) else {
            info.problem = "\(info.file) does not exist"
            return
        }
        let reply: JSONValue
        do { reply = try await launcher.provisioner.info(of: info.file, format: DiskFormat(rawValue: info.format)) } catch {
            info.problem = error.reason
            return
        }
        info.virtualBytes = reply["virtual-size"]?.intValue.map { UInt64(max(0, $0)) }
        info.allocatedBytes = reply["actual-size"]?.intValue.map { UInt64(max(0, $0)) }
        info.backing = reply["full-backing-filename"]?.stringValue ?? reply["backing-filename"]?.stringValue
    }
}
