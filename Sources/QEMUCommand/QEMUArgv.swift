import JSON
import Profiles

/// Pure `LiveConfig` → argv for QEMU 7.2. No I/O: the supervisor launches the result without a shell.
///
/// Order (golden files depend on it; documented in docs/argv.md):
/// binary, identity (`-name`, `-uuid`), machine, accelerator, cpu, smp, memory, `-overcommit`, defaults
/// off, display, sandbox, QMP, handed-over fd sets (`-add-fd`, unprivileged QEMU only), serial, guest agent chardev,
/// pidfile, firmware blockdevs, direct kernel boot, disk blockdevs, netdevs, memory backends (boot RAM, then DIMMs),
/// devices (root ports, host device root ports, profile disks, profile NICs, host devices, balloon, guest agent
/// channel, hotplugged disks, hotplugged NICs, DIMMs), `-S`, `-incoming`. Emulated host-device stand-ins' netdevs
/// come after the NICs' netdevs.
public enum QEMUArgv {
    /// OVMF code (read-only pflash0) used for `firmware: uefi`.
    public static let ovmfCodePath = "/usr/share/OVMF/OVMF_CODE.fd"
    public static let ovmfFileNode = "ovmf-code-file"
    public static let ovmfNode = "ovmf-code"

    public static func build(_ config: LiveConfig, _ runtime: RuntimeOptions) -> [String] {
        let profile = config.profile
        let layout = PCILayout(profile: profile)
        var args: [String] = [profile.qemu.binary]

        // Identity
        args += ["-name", "guest=" + qemuOptsEscape(profile.name) + ",debug-threads=on"]
        args += ["-uuid", config.uuid]

        // Machine and accelerator
        var machine = qemuOptsEscape(profile.machine)
        if profile.boot.firmware == .uefi { machine += ",pflash0=" + ovmfNode }
        // Assigned devices pin all guest RAM for DMA: nothing to merge.
        if !profile.memory.merge || !profile.hostdevs.isEmpty || !config.hotplugged.hostdevs.isEmpty { machine += ",mem-merge=off" }
        if profile.memory.hugepages { machine += ",memory-backend=" + DeviceProps.bootRAMBackendID }
        args += ["-machine", machine]
        switch runtime.accel {
        case .kvm: args += ["-enable-kvm"]
        case .tcg: args += ["-accel", "tcg"]
        }

        // CPU and memory
        args += ["-cpu", cpuModel(profile.cpu, runtime.accel)]
        // Boot vCPUs stay at the profile's count; vCPUs plugged later come back as -device entries with
        // their hotplug ids. Virtio queue counts follow the boot count, so this keeps the device layout
        // identical for a migration destination and keeps those vCPUs unpluggable after a restart.
        let online = config.hotplugged.onlineCPUs ?? profile.cpu.count
        let boot = min(online, profile.cpu.count)
        args += ["-smp", smp(profile.cpu, online: boot)]
        args += ["-m", memory(profile.memory)]
        if profile.memory.lock { args += ["-overcommit", "mem-lock=on"] }

        // Nothing implicit, no window, least privilege
        args += ["-nodefaults", "-no-user-config", "-display", "none"]
        // A VNC server that listens nowhere: the daemon hands QEMU each client's socket (`add_client`).
        if profile.display?.vnc == true { args += ["-vnc", "none"] }
        args += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]

        // Control and console
        let handOver = runtime.handOver
        if let handOver {
            args += ["-chardev", "socket,id=qmp,fd=\(handOver.qmp),server=on,wait=off"]
        } else {
            args += ["-chardev", "socket,id=qmp,path=" + qemuOptsEscape(runtime.qmpSocket) + ",server=on,wait=off"]
        }
        args += ["-mon", "chardev=qmp,mode=control"]
        if let handOver { args += handOver.addFDArguments(config, markerText: qemuOptsEscape(runtime.qmpSocket)) }
        if profile.serial == .log, let log = handOver?.serial?.path ?? runtime.serialLog {
            // A socket for `corral console --attach` (one client at a time) that logs everything to the file, with
            // or without a client.
            let listen = handOver?.console.map { "fd=\($0)" } ?? "path=" + qemuOptsEscape(runtime.consoleSocket)
            args += ["-chardev", "socket,id=serial0,\(listen),server=on,wait=off,logfile=" + qemuOptsEscape(log)
                + ",logappend=on"]
            args += ["-serial", "chardev:serial0"]
        }
        if profile.agent {
            if let fd = handOver?.agent {
                args += ["-chardev", "socket,id=" + DeviceProps.agentChardevID + ",fd=\(fd),server=on,wait=off"]
            } else {
                args += ["-chardev", "socket,id=" + DeviceProps.agentChardevID + ",path="
                    + qemuOptsEscape(runtime.agentSocket) + ",server=on,wait=off"]
            }
        }
        if let pidFile = runtime.pidFile { args += ["-pidfile", pidFile] }

        // Boot: firmware flash (UEFI), then direct kernel boot (works under either firmware)
        if profile.boot.firmware == .uefi {
            for node in ovmfNodes() { args += ["-blockdev", text(node)] }
        }
        if let kernel = profile.boot.kernel {
            args += ["-kernel", handOver?.kernel.map { "/proc/self/fd/\($0)" } ?? kernel]
            if let initrd = profile.boot.initrd { args += ["-initrd", handOver?.initrd.map { "/proc/self/fd/\($0)" } ?? initrd] }
            if let cmdline = profile.boot.cmdline { args += ["-append", cmdline] }
        }

        // Backends
        let pluggedDisks = config.hotplugged.disks.map(\.disk)
        for disk in profile.disks + pluggedDisks {
            for node in DeviceProps.diskNodes(disk, filename: handOver?.disks[disk.id]?.path,
                                              backingFilename: handOver?.backings[disk.id]?.path,
                                              layerFilenames: handOver?.layers[disk.id]?.map(\.path)) {
                args += ["-blockdev", text(node)]
            }
        }
        let taps = TapPlan.entries(config, vhostAvailable: runtime.vhostNet)
        for nic in profile.nics + config.hotplugged.nics.map(\.nic) {
            if let tap = taps.first(where: { $0.nicID == nic.id }) {
                args += ["-netdev", text(TapPlan.netdev(nic, tap))]
            } else {
                args += ["-netdev", text(DeviceProps.netdev(nic))]
            }
        }
        for device in profile.hostdevs {
            if let netdev = DeviceProps.hostDeviceNetdev(device) { args += ["-netdev", text(netdev)] }
        }
        if let ram = DeviceProps.bootRAMBackend(profile.memory) { args += ["-object", text(ram)] }
        for dimm in config.hotplugged.memory {
            args += ["-object", text(DeviceProps.memoryBackend(dimm, hugepages: profile.memory.hugepages))]
        }

        // Devices: hotplugged vCPUs first (see -smp above), then the PCI devices
        let model = cpuModel(profile.cpu, runtime.accel)
        for index in boot..<max(boot, online) {
            args += ["-device", text(DeviceProps.cpuDevice(index: index, cpu: profile.cpu, model: model))]
        }
        if layout.isPCIe {
            for port in layout.ports + layout.hostdevPorts {
                args += ["-device", text(DeviceProps.rootPort(port, bus: layout.rootBus))]
            }
        }
        for (index, disk) in profile.disks.enumerated() {
            let place = layout.disks[index]
            let boot = index == 0 && profile.boot.kernel == nil ? 1 : nil
            for device in DeviceProps.diskDevice(disk, bus: place.bus, addr: place.addr, bootIndex: boot) {
                args += ["-device", text(device)]
            }
        }
        for (index, nic) in profile.nics.enumerated() {
            let place = layout.nics[index]
            let queues = taps.first(where: { $0.nicID == nic.id })?.queues
            args += ["-device", text(DeviceProps.nicDevice(nic, vmName: profile.name, bus: place.bus, addr: place.addr,
                                                           queues: queues,
                                                           standby: DeviceProps.isFailoverStandby(nic, in: profile)))]
        }
        for (index, device) in profile.hostdevs.enumerated() where index < layout.hostdevPorts.count {
            let hosts = runtime.hostDevices[device.id]?.map(\.description) ?? DeviceProps.unresolvedAddresses(device)
            for object in DeviceProps.hostDevices(device, hosts: hosts, bus: layout.hostdevPorts[index].id,
                                                  pairedNIC: DeviceProps.failoverNIC(device, in: profile),
                                                  vmName: profile.name) {
                args += ["-device", text(object)]
            }
        }
        if let balloon = profile.memory.balloon, let place = layout.balloon {
            args += ["-device", text(DeviceProps.balloonDevice(balloon, bus: place.bus, addr: place.addr))]
        }
        if let place = layout.agentSerial {
            for device in DeviceProps.agentDevices(bus: place.bus, addr: place.addr) { args += ["-device", text(device)] }
        }
        if let display = profile.display, let place = layout.video,
           let video = DeviceProps.videoDevice(display.vga, bus: place.bus, addr: place.addr) {
            args += ["-device", text(video)]
        }
        for plugged in config.hotplugged.disks {
            let place = layout.placement(forPort: plugged.port)
            for device in DeviceProps.diskDevice(plugged.disk, bus: place.bus, addr: place.addr) {
                args += ["-device", text(device)]
            }
        }
        for plugged in config.hotplugged.nics {
            let place = layout.placement(forPort: plugged.port)
            let queues = taps.first(where: { $0.nicID == plugged.nic.id })?.queues
            args += ["-device", text(DeviceProps.nicDevice(plugged.nic, vmName: profile.name, bus: place.bus,
                                                           addr: place.addr, queues: queues))]
        }
        for plugged in config.hotplugged.hostdevs {
            let place = layout.placement(forPort: plugged.port)
            let hosts = runtime.hostDevices[plugged.device.id]?.map(\.description)
                ?? DeviceProps.unresolvedAddresses(plugged.device)
            for object in DeviceProps.hostDevices(plugged.device, hosts: hosts, bus: place.bus, pairedNIC: nil,
                                                  vmName: profile.name) {
                args += ["-device", text(object)]
            }
        }
        for dimm in config.hotplugged.memory {
            args += ["-device", text(DeviceProps.memoryDevice(dimm))]
        }

        // Run state
        if runtime.startPaused { args += ["-S"] }
        if let incoming = runtime.incoming { args += ["-incoming", incoming] }
        return args
    }

    /// RFC 4122 version 5 UUID of the VM name (SHA-1 in a fixed corral namespace).
    public static func stableUUID(for name: String) -> String {
        StableIDs.uuid(for: name)
    }

    /// Escapes a value for QemuOpts/keyval syntax (`-chardev`, `-name`, `-machine`…): QEMU reads `,,`
    /// as a literal comma, so doubling every comma keeps the value one value. Every value from outside
    /// that reaches a QemuOpts argument goes through here.
    public static func qemuOptsEscape(_ value: String) -> String {
        value.replacingCommas()
    }

    /// `-cpu`: the profile's model, else `host` (KVM) or `max` (TCG cannot emulate `host`).
    public static func cpuModel(_ cpu: CPU, _ accel: ResolvedAccel) -> String {
        cpu.model ?? (accel == .kvm ? "host" : "max")
    }

    /// `-smp N,maxcpus=M[,sockets=S][,cores=C][,threads=T]`; N is the online count.
    public static func smp(_ cpu: CPU, online: Int? = nil) -> String {
        var text = "\(online ?? cpu.count),maxcpus=\(cpu.max)"
        if let sockets = cpu.sockets { text += ",sockets=\(sockets)" }
        if let cores = cpu.cores { text += ",cores=\(cores)" }
        if let threads = cpu.threads { text += ",threads=\(threads)" }
        return text
    }

    /// `-m size=NM[,slots=S,maxmem=MM]`; hotplug fields only when both `max` and `slots` are set.
    public static func memory(_ memory: Memory) -> String {
        var text = "size=\(memory.size.mebibytes)M"
        if let max = memory.max, memory.slots > 0 {
            text += ",slots=\(memory.slots),maxmem=\(max.mebibytes)M"
        }
        return text
    }

    /// The read-only OVMF code flash: file node, then raw node `ovmf-code` (the machine's `pflash0`).
    public static func ovmfNodes() -> [JSONObject] {
        [
            ["driver": "file", "node-name": .string(ovmfFileNode), "filename": .string(ovmfCodePath),
             "read-only": true],
            ["driver": "raw", "node-name": .string(ovmfNode), "file": .string(ovmfFileNode), "read-only": true],
        ]
    }

    private static func text(_ object: JSONObject) -> String {
        JSONValue.object(object).compactText
    }
}

extension String {
    fileprivate func replacingCommas() -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for scalar in unicodeScalars {
            if scalar == "," { out += ",," } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
