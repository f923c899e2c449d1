import HostDevices
import CorralCore
import CorralModel
import JSON
import Profiles
import QEMUCommand

/// Host devices on a running VM (`corral hostdev add|rm`): bind on the host, hand the group to QEMU, `device_add`;
/// `device_del`, DEVICE_DELETED, and only then back to the host driver.
extension ManagedVM {
    /// The profile's host devices and those plugged since.
    var hostDevices: [HostDevice] { config.profile.hostdevs + config.hotplugged.hostdevs.map(\.device) }

    /// Every page of guest RAM is pinned: VFIO devices DMA into it, or the profile locks it (`memory.lock`).
    var memoryPinned: Bool {
        config.profile.memory.lock || hostDevices.contains(where: HostDeviceClaims.needsBinding)
    }

    /// `status.hostdevs`: each device, what it holds now and where it came from.
    var hostDeviceInfo: [VMStatus.HostDeviceInfo]? {
        let plugged = Set(config.hotplugged.hostdevs.map(\.device.id))
        let held = HostDeviceClaims.addresses(hostDevices, record.boundDevices ?? [])
        let info = hostDevices.map { device in
            VMStatus.HostDeviceInfo(id: device.id, kind: device.kind,
                                    host: (held[device.id] ?? []).map(\.description),
                                    source: plugged.contains(device.id) ? "plugged" : "profile",
                                    failover: device.failover)
        }
        return info.isEmpty ? nil : info
    }

    func addHostDevice(_ request: HostDeviceAddRequest) async throws(ControlError) {
        try check(.hotplug)
        try checkPlugAllowed()
        let device: HostDevice
        switch HotplugValidation.hostDevice(request, config: config) {
        case .success(let d): device = d
        case .failure(let r): throw refuse(r)
        }
        let port: String
        switch HotplugValidation.freePort(config) {
        case .success(let p): port = p
        case .failure(let r): throw refuse(r)
        }
        guard let claims = hostDeviceClaims else { throw .refused("this daemon does not assign host devices") }
        let executor = try executor()
        guard let pid = running?.process.pid else { throw .conflict("\(name) has no QEMU running") }
        let records = try await claims.acquire(vm: name, device: device,
                                               nics: config.profile.nics + config.hotplugged.nics.map(\.nic))
        guard let host = records.first?.address else { throw .internalError("no function was bound for \(device.id)") }
        // Persisted before QEMU gets the device: a daemon that dies from here on still knows what to give back.
        record.boundDevices = (record.boundDevices ?? []) + records
        persist()
        do {
            try await prepareForDMA(pid: pid, records: record.boundDevices ?? [])
        } catch {
            await giveBack(dropRecords(of: device.id))
            throw error
        }
        let placement = PCILayout(profile: config.profile).placement(forPort: port)
        do {
            try await executor.run(HotplugPlanner.addHostDevice(device, host: host, at: placement, vmName: name))
        } catch {
            await giveBack(dropRecords(of: device.id))
            throw failure(error)
        }
        config.hotplugged.hostdevs.append(PluggedHostDevice(device: device, port: port))
        await saveConfig(.hostdevAdded, ["id": .string(device.id), "host": .string(host.description),
                                         "port": .string(port)])
    }

    func removeHostDevice(id: String) async throws(ControlError) {
        try check(.hotplug)
        guard let plugged = config.hotplugged.hostdevs.first(where: { $0.device.id == id }) else {
            if config.profile.hostdevs.contains(where: { $0.id == id }) {
                throw .invalidRequest("host device \(id) comes from the profile (it would come back at the next start); "
                    + "only devices added with `corral hostdev add` can be removed")
            }
            throw .notFound("\(name) has no host device \(id)")
        }
        try await runRemoval(HotplugPlanner.removeHostDevice(plugged.device), completion: .hostdev(id: id))
        let released = dropHostDevice(id)
        await saveConfig(.hostdevRemoved, ["id": .string(id)])
        await giveBack(released)
    }

    /// The plugged device leaves the configuration and the VM's records (in one step, no suspension); the caller
    /// gives the returned functions back with `giveBack`.
    func dropHostDevice(_ id: String) -> [BindRecord] {
        config.hotplugged.hostdevs.removeAll { $0.device.id == id }
        return dropRecords(of: id)
    }

    private func dropRecords(of id: String) -> [BindRecord] {
        let mine = record.boundDevices?.filter { $0.deviceID == id } ?? []
        record.boundDevices?.removeAll { $0.deviceID == id }
        if record.boundDevices?.isEmpty == true { record.boundDevices = nil }
        persist()
        return mine
    }

    /// Back to their host drivers (QEMU has let them go).
    func giveBack(_ records: [BindRecord]) async {
        guard !records.isEmpty else { return }
        for problem in await hostDeviceClaims?.release(vm: name, records) ?? [] {
            logger.error("a host device was not given back to its driver", metadata: ["problem": "\(problem)"])
        }
    }

    /// What a running QEMU needs before `device_add vfio-pci`: its groups' nodes (its uid's, and allowed by its
    /// device cgroup) and a memory lock limit covering guest RAM (VFIO pins all of it).
    private func prepareForDMA(pid: Int32, records: [BindRecord]) async throws(ControlError) {
        guard let claims = hostDeviceClaims else { return }
        let rules = await claims.handOver(records, to: record.uid)
        if record.uid != nil, let deviceCGroup {
            do { _ = try deviceCGroup.prepare(vm: name, rules: DeviceRules.allowed(accel: record.accel) + rules) } catch {
                throw .refused("cannot let \(name)'s QEMU open its VFIO groups: \(error.description)")
            }
        }
        do { try claims.lockLimit.raise(pid: pid, to: memorySize + (64 << 20)) } catch {
            throw .refused("cannot raise \(name)'s QEMU memory lock limit for the device's DMA: \(error.description)")
        }
    }
}
