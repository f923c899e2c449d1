import CorralModel
import Hummingbird
import CorralWire
import CorralControl

extension CorralAPI {
    /// vCPUs, disks, NICs and memory DIMMs.
    func addHotplugRoutes(_ v1: RouterGroup<CorralRequestContext>) {
        let control = self.control

        v1.post("vms/:name/cpus") { request, context in
            let body = try await Self.decodeBody(CPUCountRequest.self, request, context)
            return try Reply.json(try await control.setCPUs(Self.name(context), count: body.count))
        }
        v1.post("vms/:name/disks") { request, context in
            let body = try await Self.decodeBody(DiskAddRequest.self, request, context)
            return try Reply.json(try await control.addDisk(Self.name(context), body), status: .created)
        }
        v1.delete("vms/:name/disks/:id") { request, context in
            let deleteImage = try Self.boolQuery(request, "deleteImage") ?? false
            let status = try await control.removeDisk(Self.name(context), id: Self.parameter("id", context),
                                                      deleteImage: deleteImage)
            return try Reply.json(status)
        }
        v1.post("vms/:name/nics") { request, context in
            let body = try await Self.decodeBody(NICAddRequest.self, request, context)
            return try Reply.json(try await control.addNIC(Self.name(context), body), status: .created)
        }
        v1.delete("vms/:name/nics/:id") { _, context in
            return try Reply.json(try await control.removeNIC(Self.name(context), id: Self.parameter("id", context)))
        }
        v1.post("vms/:name/memory") { request, context in
            let body = try await Self.decodeBody(MemoryAddRequest.self, request, context)
            return try Reply.json(try await control.addMemory(Self.name(context), body), status: .created)
        }
        v1.delete("vms/:name/memory/:id") { _, context in
            return try Reply.json(try await control.removeMemory(Self.name(context), id: Self.parameter("id", context)))
        }
        v1.post("vms/:name/hostdevs") { request, context in
            let body = try await Self.decodeBody(HostDeviceAddRequest.self, request, context)
            return try Reply.json(try await control.addHostDevice(Self.name(context), body), status: .created)
        }
        v1.delete("vms/:name/hostdevs/:id") { _, context in
            return try Reply.json(try await control.removeHostDevice(Self.name(context),
                                                                     id: Self.parameter("id", context)))
        }
        v1.get("hostdevs") { _, _ in
            return try Reply.json(try await control.hostDevices())
        }
        v1.get("volumes") { _, _ in
            return try Reply.json(try await control.volumes())
        }
        v1.get("vms/:name/snapshots") { _, context in
            return try Reply.json(try await control.snapshots(Self.name(context)))
        }
        v1.post("vms/:name/snapshots") { request, context in
            let body = try await Self.decodeBody(SnapshotCreateRequest.self, request, context)
            return try Reply.json(try await control.createSnapshot(Self.name(context), body), status: .created)
        }
        v1.post("vms/:name/snapshots/:snapshot/revert") { _, context in
            return try Reply.json(try await control.revertSnapshot(Self.name(context),
                                                                   snapshot: Self.parameter("snapshot", context)))
        }
        v1.delete("vms/:name/snapshots/:snapshot") { _, context in
            return try Reply.json(try await control.removeSnapshot(Self.name(context),
                                                                   snapshot: Self.parameter("snapshot", context)))
        }
    }
}
