import JSON
import Profiles
import QEMUCommand
import QMP
import CorralControl
import CorralCore
import Supervisor
import Testing

@Suite struct HotplugPlannerTests {
    @Test func diskPlanUsesTheSharedPropertyBuilder() {
        let disk = Disk(id: "data", file: "/v/a b,c.qcow2", format: .qcow2)
        let steps = HotplugPlanner.addDisk(disk, at: PCIPlacement(bus: "hp1"))
        #expect(steps.map(\.command) == ["blockdev-add", "blockdev-add", "device_add"])
        #expect(steps[0].arguments == DeviceProps.diskNodes(disk)[0])
        #expect(steps[2].arguments == DeviceProps.diskDevice(disk, bus: "hp1")[0])
        #expect(steps[0].arguments["filename"]?.stringValue == "/v/a b,c.qcow2", "paths stay one JSON value")
        #expect(steps[2].undo.map(\.command) == ["device_del"])
        #expect(steps[0].undo.map(\.command) == ["blockdev-del"])
    }

    @Test func scsiDiskPlugsControllerThenDiskAndUnplugsInReverse() {
        let disk = Disk(id: "s1", file: "/v/s.raw", format: .raw, bus: .virtioSCSI)
        let add = HotplugPlanner.addDisk(disk, at: PCIPlacement(bus: "hp0"))
        #expect(add.map(\.description) == ["blockdev-add file-s1", "blockdev-add fmt-s1", "device_add scsi-s1", "device_add disk-s1"])
        let remove = HotplugPlanner.removeDisk(disk)
        #expect(remove.map(\.description) == ["device_del disk-s1", "device_del scsi-s1", "blockdev-del fmt-s1", "blockdev-del file-s1"])
        #expect(remove[0].wait == .deviceDeleted("disk-s1"))
    }

    @Test func cpuPlanFillsLowestFreeSlotsAndRemovesHighestButNeverTheFirst() {
        func slot(_ core: Int64, _ path: String?) -> HotplugPlanner.CPUSlot {
            .init(type: "max-x86_64-cpu", props: ["core-id": .int(core), "thread-id": 0, "socket-id": 0], qomPath: path)
        }
        // query-hotpluggable-cpus lists slots highest first; the guest wants them plugged lowest first.
        let slots = [slot(3, nil), slot(2, nil), slot(1, nil), slot(0, "/machine/unattached/device[0]")]
        guard case .add(let add) = HotplugPlanner.setCPUs(target: 3, slots: slots, vmName: "vm") else {
            Issue.record("expected an add plan")
            return
        }
        #expect(add.map { $0.arguments["core-id"]?.intValue } == [1, 2])
        #expect(add[0].arguments["driver"]?.stringValue == "max-x86_64-cpu")
        #expect(add[0].arguments["id"]?.stringValue == "cpu-s0-c1-t0")

        let three = [slot(3, nil), slot(2, "/p/2"), slot(1, "/p/1"), slot(0, "/p/0")]
        #expect(HotplugPlanner.setCPUs(target: 1, slots: three, vmName: "vm")
            == .remove([QMPStep("device_del", ["id": "/p/2"], wait: .deviceDeleted("/p/2")),
                        QMPStep("device_del", ["id": "/p/1"], wait: .deviceDeleted("/p/1"))]))
        #expect(HotplugPlanner.setCPUs(target: 3, slots: three, vmName: "vm") == .unchanged)
    }
}

@Suite struct HotplugRollbackTests {
    let disk = Disk(id: "data", file: "/v/d.qcow2")
    let nic = NIC(id: "n1", mac: "52:54:00:00:00:01")

    @Test func deviceAddFailingAfterBlockdevAddDeletesTheNodes() async {
        let qmp = ScriptedQMP()
        qmp.expect("blockdev-add")
        qmp.expect("blockdev-add")
        qmp.expect("device_add", nil, .error("GenericError", "Bus 'hp0' does not support hotplugging"))
        qmp.expect("blockdev-del", ["node-name": "fmt-data"])
        qmp.expect("blockdev-del", ["node-name": "file-data"])
        let executor = HotplugExecutor(qmp: qmp)
        await #expect(throws: HotplugError.stepFailed(step: "device_add disk-data",
                                                      error: .commandFailed(command: "device_add", errorClass: "GenericError",
                                                                             desc: "Bus 'hp0' does not support hotplugging"),
                                                      undoProblems: [])) {
            try await executor.run(HotplugPlanner.addDisk(disk, at: PCIPlacement(bus: "hp0")))
        }
        qmp.verify()
    }

    @Test func secondBlockdevAddFailingDeletesOnlyTheFirst() async {
        let qmp = ScriptedQMP()
        qmp.expect("blockdev-add")
        qmp.expect("blockdev-add", nil, .error("GenericError", "Image is not in qcow2 format"))
        qmp.expect("blockdev-del", ["node-name": "file-data"])
        await #expect(throws: HotplugError.self) {
            try await HotplugExecutor(qmp: qmp).run(HotplugPlanner.addDisk(disk, at: PCIPlacement(bus: "hp0")))
        }
        qmp.verify()
    }

    @Test func nicDeviceAddFailingDeletesTheNetdev() async {
        let qmp = ScriptedQMP()
        qmp.expect("netdev_add")
        qmp.expect("device_add", nil, .error("GenericError", "Duplicate ID"))
        qmp.expect("netdev_del", ["id": "net-n1"])
        await #expect(throws: HotplugError.self) {
            try await HotplugExecutor(qmp: qmp).run(HotplugPlanner.addNIC(nic, vmName: "vm", at: PCIPlacement(bus: "hp1")))
        }
        qmp.verify()
    }

    @Test func scsiDiskFailingAfterControllerUnplugsControllerAndWaits() async {
        let scsi = Disk(id: "s1", file: "/v/s.raw", format: .raw, bus: .virtioSCSI)
        let qmp = ScriptedQMP()
        qmp.expect("blockdev-add")
        qmp.expect("blockdev-add")
        qmp.expect("device_add")
        qmp.expect("device_add", nil, .error("GenericError", "no"))
        qmp.expect("device_del", ["id": "scsi-s1"], .ok(), then: [ScriptedQMP.deviceDeleted("scsi-s1")])
        qmp.expect("blockdev-del", ["node-name": "fmt-s1"])
        qmp.expect("blockdev-del", ["node-name": "file-s1"])
        await #expect(throws: HotplugError.self) {
            try await HotplugExecutor(qmp: qmp).run(HotplugPlanner.addDisk(scsi, at: PCIPlacement(bus: "hp0")))
        }
        qmp.verify()
        #expect(qmp.sent.last == "blockdev-del file-s1")
    }

    @Test func memoryDeviceAddFailingDeletesTheBackend() async {
        let memory = PluggedMemory(id: "m1", size: .mib(128))
        let qmp = ScriptedQMP()
        qmp.expect("object-add")
        qmp.expect("device_add", nil, .error("GenericError", "not enough slots"))
        qmp.expect("object-del", ["id": "mem-m1"])
        await #expect(throws: HotplugError.self) { try await HotplugExecutor(qmp: qmp).run(HotplugPlanner.addMemory(memory)) }
        qmp.verify()
    }

    @Test func removalWaitsForDeviceDeletedAndRetriesBusyNodes() async throws {
        let qmp = ScriptedQMP()
        qmp.expect("device_del", ["id": "disk-data"], .ok(), then: [ScriptedQMP.deviceDeleted("disk-data")])
        qmp.expect("blockdev-del", ["node-name": "fmt-data"], .error("GenericError", "Node 'fmt-data' is busy: node is used as backing hd"))
        qmp.expect("blockdev-del", ["node-name": "fmt-data"])
        qmp.expect("blockdev-del", ["node-name": "file-data"])
        try await HotplugExecutor(qmp: qmp, retryDelay: .milliseconds(1)).run(HotplugPlanner.removeDisk(disk))
        qmp.verify()
    }

    @Test func unplugTheGuestNeverConfirmsIsPendingNotDone() async {
        let qmp = ScriptedQMP()
        qmp.expect("device_del", ["id": "nic-n1"])  // no DEVICE_DELETED follows
        let executor = HotplugExecutor(qmp: qmp, unplugTimeout: .milliseconds(200))
        await #expect(throws: HotplugError.unplugPending(device: "nic-n1", after: .milliseconds(200))) {
            try await executor.run(HotplugPlanner.removeNIC(nic))
        }
        qmp.verify()  // netdev_del must NOT have been sent
        #expect(qmp.sent == ["device_del nic-n1"])
    }

    @Test func undoProblemsAreReported() async {
        let qmp = ScriptedQMP()
        qmp.expect("netdev_add")
        qmp.expect("device_add", nil, .error("GenericError", "boom"))
        qmp.expect("netdev_del", nil, .error("GenericError", "gone"))
        await #expect(throws: HotplugError.stepFailed(step: "device_add nic-n1", error: .commandFailed(command: "device_add", errorClass: "GenericError", desc: "boom"),
                                                      undoProblems: ["netdev_del net-n1: netdev_del net-n1 failed: GenericError: gone; earlier steps were undone"])) {
            try await HotplugExecutor(qmp: qmp).run(HotplugPlanner.addNIC(nic, vmName: "vm", at: PCIPlacement(bus: "hp0")))
        }
        qmp.verify()
    }
}

@Suite struct DeviceDeletedMatchingTests {
    func deleted(device: String? = nil, path: String) -> QMPEvent {
        var data: JSONObject = ["path": .string(path)]
        if let device { data["device"] = .string(device) }
        return QMPEvent(name: "DEVICE_DELETED", data: .object(data), timestamp: 0)
    }

    @Test func matchesIdPathAndChildren() {
        #expect(HotplugExecutor.event(deleted(device: "nic-n1", path: "/machine/peripheral/nic-n1"), confirmsDeletionOf: "nic-n1"))
        // QEMU 7.2 announces a vCPU's removal only through its lapic child.
        #expect(HotplugExecutor.event(deleted(path: "/machine/peripheral/cpu-s0-c1-t0/lapic"),
                                      confirmsDeletionOf: "/machine/peripheral/cpu-s0-c1-t0"))
        #expect(HotplugExecutor.event(deleted(path: "/machine/peripheral/c1/lapic"), confirmsDeletionOf: "c1"))
        #expect(!HotplugExecutor.event(deleted(path: "/machine/peripheral/c10/lapic"), confirmsDeletionOf: "c1"))
        #expect(!HotplugExecutor.event(deleted(device: "disk-a", path: "/machine/peripheral/disk-a"), confirmsDeletionOf: "disk-ab"))
        #expect(!HotplugExecutor.event(QMPEvent(name: "STOP", data: ["path": "/machine/peripheral/x"], timestamp: 0),
                                       confirmsDeletionOf: "x"))
    }
}
