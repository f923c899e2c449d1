import API
import CorralModel
import CorralWire
import Foundation
import Hummingbird
import HummingbirdTesting
import JSON
import Profiles
import CorralControl
import LogTail
import Supervisor
import Testing

/// The hotplug and tuning routes over fakes: bodies, status codes, validation.
@Suite struct HotplugTuningRouteTests {
    let fake = FakeControl(vms: [FakeControl.status("web")])

    func withApp<T: Sendable>(
        _ control: (any DaemonControl)? = nil, _ body: @Sendable (any TestClientProtocol) async throws -> T
    ) async throws -> T {
        let app = Application(router: CorralAPI(control: control ?? fake).router())
        return try await app.test(.router, body)
    }

    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    func post(_ client: any TestClientProtocol, _ uri: String, _ body: String) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: Self.jsonHeaders, body: ByteBuffer(string: body))
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
    }

    @Test func cpusSetsTheCountAndTheControlRefusesZero() async throws {
        try await withApp { client in
            let ok = try await post(client, "/v1/vms/web/cpus", #"{"count": 3}"#)
            #expect(ok.status == .ok)
            #expect(try decode(VMStatus.self, ok).cpus == .init(online: 3, max: 4))
            let zero = try await post(client, "/v1/vms/web/cpus", #"{"count": 0}"#)
            #expect(zero.status == .badRequest, "the control's own refusal keeps its status")
            #expect(try decode(ErrorBody.self, zero).message == "COUNT: 0 is outside 1…4")
            let tooMany = try await post(client, "/v1/vms/web/cpus", #"{"count": 9}"#)
            #expect(tooMany.status == .badRequest)
            let missing = try await post(client, "/v1/vms/ghost/cpus", #"{"count": 2}"#)
            #expect(missing.status == .notFound)
        }
        #expect(await fake.calls == [.setCPUs("web", 3), .setCPUs("web", 0), .setCPUs("web", 9), .setCPUs("ghost", 2)])
    }

    @Test func diskAddAnswers201AndNeedsAnAbsoluteFile() async throws {
        try await withApp { client in
            let body = #"{"id":"d1","file":"/srv/d1.qcow2","size":"16M","readonly":false,"bus":"nvme"}"#
            let added = try await post(client, "/v1/vms/web/disks", body)
            #expect(added.status == .created)
            let disk = try decode(VMStatus.self, added).disks.last
            #expect(disk == .init(id: "d1", file: "/srv/d1.qcow2", format: "qcow2", readonly: false, bus: "nvme"))
            let relative = try await post(client, "/v1/vms/web/disks", #"{"id":"d2","file":"d2.qcow2","readonly":false}"#)
            #expect(relative.status == .badRequest)
            #expect(try decode(ErrorBody.self, relative).message
                == "--file: 'd2.qcow2' must be an absolute path (on the daemon's host)")
            let badBus = try await post(client, "/v1/vms/web/disks", #"{"id":"d3","file":"/x","readonly":false,"bus":"ide"}"#)
            #expect(badBus.status == .badRequest)
        }
        #expect(await fake.calls == [
            .addDisk("web", DiskAddRequest(id: "d1", file: "/srv/d1.qcow2", size: "16M", bus: .nvme)),
            .addDisk("web", DiskAddRequest(id: "d2", file: "d2.qcow2")),
        ])
    }

    @Test func diskRemovePassesDeleteImage() async throws {
        await fake.add({
            var vm = FakeControl.status("db")
            vm.disks.append(.init(id: "d 1", file: "/x", format: "raw", readonly: true, bus: "virtio-blk"))
            return vm
        }())
        try await withApp { client in
            let removed = try await client.execute(uri: "/v1/vms/db/disks/d%201?deleteImage=true", method: .delete)
            #expect(removed.status == .ok)
            #expect(try decode(VMStatus.self, removed).disks.map(\.id) == ["root"])
            let bad = try await client.execute(uri: "/v1/vms/db/disks/root?deleteImage=yes", method: .delete)
            #expect(bad.status == .badRequest)
            let plain = try await client.execute(uri: "/v1/vms/db/disks/root", method: .delete)
            #expect(plain.status == .ok)
        }
        #expect(await fake.calls == [.removeDisk("db", id: "d 1", deleteImage: true),
                                     .removeDisk("db", id: "root", deleteImage: false)])
    }

    @Test func nicAndMemoryRoutes() async throws {
        try await withApp { client in
            let nic = try await post(client, "/v1/vms/web/nics", #"{"id":"n1","mode":"bridge","bridge":"br0","model":"e1000e"}"#)
            #expect(nic.status == .created)
            #expect(try decode(VMStatus.self, nic).nics.map(\.id) == ["net0", "n1"])
            let unplug = try await client.execute(uri: "/v1/vms/web/nics/n1", method: .delete)
            #expect(unplug.status == .ok)
            #expect(try decode(VMStatus.self, unplug).unplugPending == ["n1"])
            let dimm = try await post(client, "/v1/vms/web/memory", #"{"size":"512M"}"#)
            #expect(dimm.status == .created)
            let emptyID = try await post(client, "/v1/vms/web/memory", #"{"id":"","size":"512M"}"#)
            #expect(emptyID.status == .badRequest)
            #expect(try decode(ErrorBody.self, emptyID).message
                == "--id: '' is not a valid device id (a letter, then up to 31 letters, digits, '_' or '-')")
            let noSize = try await post(client, "/v1/vms/web/memory", #"{"id":"dimm0"}"#)
            #expect(try decode(ErrorBody.self, noSize).message == "missing field `size`")
            let gone = try await client.execute(uri: "/v1/vms/web/memory/dimm0", method: .delete)
            #expect(gone.status == .ok)
        }
        #expect(await fake.calls == [
            .addNIC("web", NICAddRequest(id: "n1", mode: .bridge, bridge: "br0", model: .e1000e)),
            .removeNIC("web", id: "n1"),
            .addMemory("web", MemoryAddRequest(size: "512M")),
            .addMemory("web", MemoryAddRequest(id: "", size: "512M")),
            .removeMemory("web", id: "dimm0"),
        ])
    }

    @Test func hostDeviceRoutes() async throws {
        try await withApp { client in
            let plug = try await post(client, "/v1/vms/web/hostdevs", #"{"id":"gpu","pci":"0000:01:00.0"}"#)
            #expect(plug.status == .created)
            #expect(try decode(VMStatus.self, plug).hostdevs?.map(\.host) == [["0000:01:00.0"]])
            let both = try await post(client, "/v1/vms/web/hostdevs", #"{"id":"x","pci":"0000:01:00.0","vfOf":"eth0"}"#)
            #expect(both.status == .badRequest)
            #expect(try decode(ErrorBody.self, both).message.contains("give one of --pci ADDRESS"))
            let vlan = try await post(client, "/v1/vms/web/hostdevs", #"{"id":"vf","vfOf":"enp101s0f0","vlan":5000}"#)
            #expect(try decode(ErrorBody.self, vlan).message == "--vlan: 5000 is outside 1…4094")
            let unplug = try await client.execute(uri: "/v1/vms/web/hostdevs/gpu", method: .delete)
            #expect(unplug.status == .ok)
            let list = try await client.execute(uri: "/v1/hostdevs", method: .get)
            #expect(list.status == .ok)
            let report = try decode(HostDeviceReport.self, list)
            #expect(report.physicalFunctions.first?.vfs.compactMap(\.vm) == ["web"])
        }
        #expect(await fake.calls == [
            .addHostDevice("web", HostDeviceAddRequest(id: "gpu", pci: "0000:01:00.0")),
            .addHostDevice("web", HostDeviceAddRequest(id: "x", pci: "0000:01:00.0", vfOf: "eth0")),
            .addHostDevice("web", HostDeviceAddRequest(id: "vf", vfOf: "enp101s0f0", vlan: 5000)),
            .removeHostDevice("web", id: "gpu"), .hostDevices,
        ])
    }

    @Test func balloonStatsTuningAndHost() async throws {
        try await withApp { client in
            let balloon = try await post(client, "/v1/vms/web/balloon", #"{"size":"384M"}"#)
            #expect(balloon.status == .ok)
            #expect(try decode(VMStatus.self, balloon).memory.balloonBytes == 384 << 20)
            let stats = try await client.execute(uri: "/v1/vms/web/stats", method: .get)
            #expect(try decode(GuestStats.self, stats) == FakeControl.guestStats("web"))
            let tuning = try await post(client, "/v1/vms/web/tuning", #"{"cpuWeight":200,"autoBalloon":false}"#)
            #expect(tuning.status == .ok)
            let nothing = try await post(client, "/v1/vms/web/tuning", "{}")
            #expect(nothing.status == .badRequest)
            #expect(try decode(ErrorBody.self, nothing).message
                == "give at least one of --cpu-weight, --cpu-quota, --balloon-min, --memory-shares, --auto-balloon")
            let host = try await client.execute(uri: "/v1/host", method: .get)
            #expect(host.status == .ok)
            #expect(try decode(HostReport.self, host) == FakeControl.hostReport)
        }
        #expect(await fake.calls == [
            .balloon("web", size: "384M"), .stats("web"),
            .setTuning("web", TuningRequest(cpuWeight: 200, autoBalloon: false)), .setTuning("web", TuningRequest()), .host,
        ])
    }

    /// The same operations through `CorralClient` over a real Unix socket.
    @Test(.timeLimit(.minutes(1))) func clientMethodsRoundTrip() async throws {
        try await DaemonHarness.run(fake) { daemon in
            try await CorralClient.withClient(.unixSocket(daemon.socketPath)) { client in
                #expect(try await client.setCPUs("web", count: 2).cpus.online == 2)
                let disk = DiskAddRequest(id: "d1", file: "/srv/d1.raw", format: .raw, readonly: true)
                #expect(try await client.addDisk("web", disk).disks.map(\.id) == ["root", "d1"])
                #expect(try await client.removeDisk("web", id: "d1", deleteImage: true).disks.map(\.id) == ["root"])
                // An id that needs escaping in the path arrives whole.
                await #expect(throws: ControlError.notFound("web has no disk d/1")) {
                    try await client.removeDisk("web", id: "d/1", deleteImage: false)
                }
                #expect(try await client.addNIC("web", NICAddRequest(id: "n1")).nics.count == 2)
                #expect(try await client.removeNIC("web", id: "n1").unplugPending == ["n1"])
                _ = try await client.addMemory("web", MemoryAddRequest(id: "m1", size: "256M"))
                _ = try await client.removeMemory("web", id: "m1")
                let vf = HostDeviceAddRequest(id: "vf", vfOf: "0000:65:00.0", mac: "52:54:00:00:00:09", vlan: 10)
                #expect(try await client.addHostDevice("web", vf).hostdevs?.map(\.kind) == ["vf"])
                _ = try await client.removeHostDevice("web", id: "vf")
                #expect(try await client.hostDevices().iommu == ["dmar0"])
                #expect(try await client.snapshots("web").map(\.name) == ["before-upgrade"])
                #expect(try await client.createSnapshot("web", SnapshotCreateRequest(name: "s1")).action == "created")
                #expect(try await client.revertSnapshot("web", snapshot: "before-upgrade").dropped == ["later"])
                #expect(try await client.removeSnapshot("web", snapshot: "before-upgrade").live)
                await #expect(throws: ControlError.notFound("web has no snapshot s/1")) {
                    try await client.removeSnapshot("web", snapshot: "s/1")
                }
                #expect(try await client.balloon("web", size: "384M").memory.balloonBytes == 384 << 20)
                #expect(try await client.stats("web") == FakeControl.guestStats("web"))
                _ = try await client.setTuning("web", TuningRequest(cpuQuotaPercent: 0))
                #expect(try await client.host() == FakeControl.hostReport)
                await #expect(throws: ControlError.notFound("no VM named ghost")) {
                    try await client.setCPUs("ghost", count: 1)
                }
            }
        }
        #expect(await fake.calls == [
            .setCPUs("web", 2),
            .addDisk("web", DiskAddRequest(id: "d1", file: "/srv/d1.raw", format: .raw, readonly: true)),
            .removeDisk("web", id: "d1", deleteImage: true), .removeDisk("web", id: "d/1", deleteImage: false),
            .addNIC("web", NICAddRequest(id: "n1")), .removeNIC("web", id: "n1"),
            .addMemory("web", MemoryAddRequest(id: "m1", size: "256M")), .removeMemory("web", id: "m1"),
            .addHostDevice("web", HostDeviceAddRequest(id: "vf", vfOf: "0000:65:00.0", mac: "52:54:00:00:00:09", vlan: 10)),
            .removeHostDevice("web", id: "vf"), .hostDevices,
            .snapshots("web"), .createSnapshot("web", SnapshotCreateRequest(name: "s1")),
            .revertSnapshot("web", "before-upgrade"), .removeSnapshot("web", "before-upgrade"),
            .removeSnapshot("web", "s/1"),
            .balloon("web", size: "384M"), .stats("web"), .setTuning("web", TuningRequest(cpuQuotaPercent: 0)),
            .host, .setCPUs("ghost", 1),
        ])
    }
}
