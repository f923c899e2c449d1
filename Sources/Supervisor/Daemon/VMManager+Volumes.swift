import CorralModel
import JSON
import Profiles
import QMP

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
                await Self.measure(&info)
                volumes.append(info)
            }
        }
        return volumes
    }

    /// Sizes and backing file from `qemu-img info --output=json -U` (`-U`: a running QEMU holds the image's lock).
    static func measure(_ info: inout VolumeInfo) async {
        guard FileOps.exists(info.file) else {
            info.problem = "\(info.file) does not exist"
            return
        }
        let result: (status: ExitStatus, output: String)
        do {
            result = try await ProcessLauncher.run("qemu-img", ["info", "--output=json", "-U", "-f", info.format, info.file])
        } catch {
            info.problem = "cannot run qemu-img: \(error)"
            return
        }
        guard result.status.isSuccess, let reply = try? JSONValue(parsing: result.output) else {
            info.problem = "qemu-img info failed: "
                + (result.output.split(separator: "\n").last.map(String.init) ?? result.status.description)
            return
        }
        info.virtualBytes = reply["virtual-size"]?.intValue.map { UInt64(max(0, $0)) }
        info.allocatedBytes = reply["actual-size"]?.intValue.map { UInt64(max(0, $0)) }
        info.backing = reply["full-backing-filename"]?.stringValue ?? reply["backing-filename"]?.stringValue
    }
}
