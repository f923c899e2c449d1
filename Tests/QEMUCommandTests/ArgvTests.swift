import Foundation
import JSON
import Profiles
import QEMUCommand
import Testing

@Suite("argv")
struct ArgvTests {
    @Test("argv[0] is the profile's binary and identity comes first")
    func identity() {
        var profile = Fixture.minimal(name: "web-1")
        profile.qemu.binary = "/opt/qemu/bin/qemu-system-x86_64"
        let args = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        #expect(args[0] == "/opt/qemu/bin/qemu-system-x86_64")
        #expect(Array(args[1...4]) == ["-name", "guest=web-1,debug-threads=on", "-uuid", QEMUArgv.stableUUID(for: "web-1")])
        #expect(args.value(of: "-machine") == "q35")
    }

    @Test("an explicit uuid in LiveConfig wins over the stable one")
    func explicitUUID() {
        let config = LiveConfig(profile: Fixture.minimal(), uuid: "00000000-0000-4000-8000-000000000001")
        #expect(QEMUArgv.build(config, Fixture.runtime()).value(of: "-uuid") == "00000000-0000-4000-8000-000000000001")
    }

    @Test("kvm → -enable-kvm and cpu host; tcg → -accel tcg and cpu max")
    func accelMapping() {
        let config = LiveConfig(profile: Fixture.minimal())
        let kvm = QEMUArgv.build(config, Fixture.runtime(.kvm))
        #expect(kvm.contains("-enable-kvm"))
        #expect(kvm.values(of: "-accel").isEmpty)
        #expect(kvm.value(of: "-cpu") == "host")

        let tcg = QEMUArgv.build(config, Fixture.runtime(.tcg))
        #expect(!tcg.contains("-enable-kvm"))
        #expect(tcg.value(of: "-accel") == "tcg")
        #expect(tcg.value(of: "-cpu") == "max")
    }

    @Test("a profile cpu model is used under either accelerator")
    func explicitCPUModel() {
        var profile = Fixture.minimal()
        profile.cpu.model = "Skylake-Server-v4"
        for accel in [ResolvedAccel.kvm, .tcg] {
            #expect(QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime(accel)).value(of: "-cpu")
                == "Skylake-Server-v4")
        }
    }

    @Test("auto resolves to kvm only when the host has it")
    func resolveAccel() {
        #expect(ResolvedAccel(resolving: .auto, kvmAvailable: true) == .kvm)
        #expect(ResolvedAccel(resolving: .auto, kvmAvailable: false) == .tcg)
        #expect(ResolvedAccel(resolving: .kvm, kvmAvailable: false) == .kvm)
        #expect(ResolvedAccel(resolving: .tcg, kvmAvailable: true) == .tcg)
    }

    /// `-smp` carries the boot count: vCPUs plugged later come back as `-device` entries (see
    /// HotpluggedCPUArgvTests), and fewer online than the boot count boots fewer.
    @Test("smp: boot count, maxcpus and only the topology given", arguments: [
        (CPU(count: 1), nil as Int?, "1,maxcpus=1"),
        (CPU(count: 2, max: 8), nil, "2,maxcpus=8"),
        (CPU(count: 2, max: 8, sockets: 2, cores: 2, threads: 2), nil, "2,maxcpus=8,sockets=2,cores=2,threads=2"),
        (CPU(count: 4, max: 4, cores: 4), nil, "4,maxcpus=4,cores=4"),
        (CPU(count: 2, max: 8), 5, "2,maxcpus=8"),
        (CPU(count: 4, max: 8), 3, "3,maxcpus=8"),
    ])
    func smp(cpu: CPU, online: Int?, expected: String) {
        var profile = Fixture.minimal()
        profile.cpu = cpu
        let config = LiveConfig(profile: profile, hotplugged: HotplugState(onlineCPUs: online))
        #expect(QEMUArgv.build(config, Fixture.runtime()).value(of: "-smp") == expected)
    }

    @Test("memory: size in MiB; slots and maxmem only with memory hotplug", arguments: [
        (Memory(size: .gib(2)), "size=2048M"),
        (Memory(size: .mib(512), max: .gib(4), slots: 4), "size=512M,slots=4,maxmem=4096M"),
        (Memory(size: .mib(512), max: .gib(4), slots: 0), "size=512M"),
    ])
    func memory(memory: Memory, expected: String) {
        var profile = Fixture.minimal()
        profile.memory = memory
        #expect(QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime()).value(of: "-m") == expected)
    }

    @Test("hotplugged DIMMs: a memory-backend-ram object and a pc-dimm device each")
    func hotpluggedMemory() throws {
        var profile = Fixture.minimal()
        profile.memory = Memory(size: .mib(512), max: .gib(2), slots: 2)
        let state = HotplugState(memory: [PluggedMemory(id: "m0", size: .mib(256)), PluggedMemory(id: "m1", size: .gib(1))])
        let args = QEMUArgv.build(LiveConfig(profile: profile, hotplugged: state), Fixture.runtime())
        let objects = args.objects(of: "-object")
        #expect(objects.count == 2)
        #expect(objects[0] == ["qom-type": "memory-backend-ram", "id": "mem-m0", "size": 268_435_456])
        #expect(objects[1]["size"] == .int(1 << 30))
        let dimms = args.devices(driver: "pc-dimm")
        #expect(dimms == [["driver": "pc-dimm", "id": "dimm-m0", "memdev": "mem-m0"],
                          ["driver": "pc-dimm", "id": "dimm-m1", "memdev": "mem-m1"]])
        // Every backend comes before the device that uses it.
        let objectIndex = try #require(args.firstIndex(of: "-object"))
        let dimmIndex = try #require(args.firstIndex { $0.contains("\"pc-dimm\"") })
        #expect(objectIndex < dimmIndex)
    }

    @Test("fixed flags: no defaults, no display, sandbox, QMP")
    func fixedFlags() {
        let args = QEMUArgv.build(LiveConfig(profile: Fixture.minimal()), Fixture.runtime())
        #expect(args.contains("-nodefaults"))
        #expect(args.contains("-no-user-config"))
        #expect(args.value(of: "-display") == "none")
        #expect(args.value(of: "-sandbox") == "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
        #expect(args.values(of: "-chardev").first == "socket,id=qmp,path=/run/corral/vms/vm/qmp.sock,server=on,wait=off")
        #expect(args.value(of: "-mon") == "chardev=qmp,mode=control")
    }

    @Test("serial goes to the log file unless the profile or the runtime says none")
    func serial() {
        let logged = QEMUArgv.build(LiveConfig(profile: Fixture.minimal()), Fixture.runtime())
        #expect(logged.values(of: "-chardev").last == "socket,id=serial0,path=/run/corral/vms/vm/console.sock,server=on,"
            + "wait=off,logfile=/var/lib/corral/vms/vm/serial.log,logappend=on")
        #expect(logged.value(of: "-serial") == "chardev:serial0")

        var quiet = Fixture.minimal()
        quiet.serial = .none
        let noSerial = QEMUArgv.build(LiveConfig(profile: quiet), Fixture.runtime())
        #expect(noSerial.values(of: "-serial").isEmpty)
        #expect(noSerial.values(of: "-chardev").count == 1)

        var runtime = Fixture.runtime()
        runtime.serialLog = nil
        #expect(QEMUArgv.build(LiveConfig(profile: Fixture.minimal()), runtime).values(of: "-serial").isEmpty)
    }

    @Test("pidfile, -S and -incoming only when asked")
    func runtimeFlags() {
        let config = LiveConfig(profile: Fixture.minimal())
        let plain = QEMUArgv.build(config, Fixture.runtime())
        #expect(!plain.contains("-S") && !plain.contains("-incoming") && !plain.contains("-pidfile"))

        var runtime = Fixture.runtime()
        runtime.pidFile = "/var/lib/corral/vms/vm/qemu.pid"
        runtime.startPaused = true
        runtime.incoming = "defer"
        let args = QEMUArgv.build(config, runtime)
        #expect(args.value(of: "-pidfile") == "/var/lib/corral/vms/vm/qemu.pid")
        #expect(Array(args.suffix(3)) == ["-S", "-incoming", "defer"])
    }

    @Test("direct kernel boot passes kernel, initrd and cmdline as plain values")
    func kernelBoot() {
        var profile = Fixture.minimal()
        profile.boot = Boot(kernel: "/boot/vmlinuz", initrd: "/boot/initrd,1.img",
                            cmdline: "console=ttyS0 root=/dev/vda rw quiet,x=1")
        profile.disks = [Disk(id: "root", file: "/img/root.qcow2")]
        let args = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        #expect(args.value(of: "-kernel") == "/boot/vmlinuz")
        #expect(args.value(of: "-initrd") == "/boot/initrd,1.img")
        #expect(args.value(of: "-append") == "console=ttyS0 root=/dev/vda rw quiet,x=1")
        // The kernel boots, so no disk gets a bootindex.
        #expect(args.device(id: "disk-root")?["bootindex"] == nil)
        #expect(args.values(of: "-blockdev").allSatisfy { !$0.contains("OVMF") })
    }

    @Test("bios boots the first disk; uefi adds a read-only OVMF pflash0")
    func firmware() {
        var profile = Fixture.minimal()
        profile.disks = [Disk(id: "a", file: "/img/a.qcow2"), Disk(id: "b", file: "/img/b.qcow2")]
        let bios = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        #expect(bios.value(of: "-machine") == "q35")
        #expect(bios.device(id: "disk-a")?["bootindex"] == .int(1))
        #expect(bios.device(id: "disk-b")?["bootindex"] == nil)
        #expect(bios.objects(of: "-blockdev").count == 4)

        profile.boot.firmware = .uefi
        let uefi = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        #expect(uefi.value(of: "-machine") == "q35,pflash0=ovmf-code")
        let nodes = uefi.objects(of: "-blockdev")
        #expect(nodes[0] == ["driver": "file", "node-name": "ovmf-code-file",
                             "filename": "/usr/share/OVMF/OVMF_CODE.fd", "read-only": true])
        #expect(nodes[1] == ["driver": "raw", "node-name": "ovmf-code", "file": "ovmf-code-file", "read-only": true])
    }

    @Test("every -device, -blockdev, -netdev and -object value is one JSON object")
    func jsonEverywhere() {
        let config = LiveConfig(profile: Fixture.rich(), hotplugged: Fixture.richHotplugged())
        let args = QEMUArgv.build(config, Fixture.runtime(.tcg))
        for flag in ["-device", "-blockdev", "-netdev", "-object"] {
            let values = args.values(of: flag)
            #expect(!values.isEmpty, "\(flag) missing")
            for value in values {
                #expect(value.hasPrefix("{") && value.hasSuffix("}"), "\(flag) \(value)")
                #expect(parseObject(value)["__unparsable__"] == nil, "\(flag) \(value)")
            }
        }
    }

    @Test("a path with comma, equals, space and quote stays one JSON string and round-trips")
    func hostilePath() throws {
        let path = "/srv/my images/a,b=c \"d\",,file=/etc/shadow.qcow2"
        var profile = Fixture.minimal()
        profile.disks = [Disk(id: "root", file: path)]
        let args = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        let blockdevs = args.values(of: "-blockdev")
        #expect(blockdevs.count == 2)
        let file = parseObject(blockdevs[0])
        #expect(file["filename"] == .string(path))
        #expect(file.count == 7)  // nothing injected
        #expect(blockdevs[0].contains(#""filename":"/srv/my images/a,b=c \"d\",,file=/etc/shadow.qcow2""#))
        // Each argv element holds at most one option's worth: the path never splits into elements.
        #expect(!args.contains { $0.hasPrefix("/etc/shadow") || $0.hasPrefix("file=") })
    }

    @Test("QemuOpts values double every comma", arguments: [
        ("/run/corral/a.sock", "/run/corral/a.sock"),
        ("/tmp/a,b", "/tmp/a,,b"),
        ("/tmp/a,,b", "/tmp/a,,,,b"),
        (",server=off,", ",,server=off,,"),
        ("/tmp/with space=1", "/tmp/with space=1"),
        ("", ""),
    ])
    func escaping(raw: String, escaped: String) {
        #expect(QEMUArgv.qemuOptsEscape(raw) == escaped)
    }

    @Test("runtime paths with commas cannot add chardev options")
    func chardevInjection() {
        let runtime = RuntimeOptions(accel: .kvm, qmpSocket: "/tmp/x,server=off,wait=on/qmp.sock",
                                     serialLog: "/tmp/s,append=on.log")
        let args = QEMUArgv.build(LiveConfig(profile: Fixture.minimal()), runtime)
        let chardevs = args.values(of: "-chardev")
        #expect(chardevs == ["socket,id=qmp,path=/tmp/x,,server=off,,wait=on/qmp.sock,server=on,wait=off",
                             "socket,id=serial0,path=/tmp/x,,server=off,,wait=on/console.sock,server=on,wait=off,"
                                + "logfile=/tmp/s,,append=on.log,logappend=on"])
        #expect(unescapedOptions(chardevs[0]) == ["socket", "id=qmp", "path=/tmp/x,server=off,wait=on/qmp.sock",
                                                  "server=on", "wait=off"])
        #expect(unescapedOptions(chardevs[1]) == ["socket", "id=serial0", "path=/tmp/x,server=off,wait=on/console.sock",
                                                  "server=on", "wait=off", "logfile=/tmp/s,append=on.log",
                                                  "logappend=on"])
    }

    @Test("argument order is the documented one")
    func order() {
        var runtime = Fixture.runtime(.tcg)
        runtime.pidFile = "/p"
        runtime.startPaused = true
        runtime.incoming = "defer"
        let args = QEMUArgv.build(LiveConfig(profile: Fixture.rich(), hotplugged: Fixture.richHotplugged()), runtime)
        let flags = args.filter { $0.hasPrefix("-") }
        var collapsed: [String] = []
        for flag in flags where collapsed.last != flag { collapsed.append(flag) }
        #expect(collapsed == [
            "-name", "-uuid", "-machine", "-accel", "-cpu", "-smp", "-m", "-nodefaults", "-no-user-config",
            "-display", "-sandbox", "-chardev", "-mon", "-chardev", "-serial", "-pidfile", "-blockdev",
            "-netdev", "-object", "-device", "-S", "-incoming",
        ])
        let drivers = args.objects(of: "-device").compactMap { $0["driver"] }
        #expect(drivers == [
            "max-x86_64-cpu",  // the rich fixture has 3 vCPUs online of boot count 2: one plugged vCPU
            "pcie-root-port", "pcie-root-port", "pcie-root-port", "pcie-root-port", "pcie-root-port",
            "pcie-root-port", "pcie-root-port", "pcie-root-port", "pcie-root-port",
            "virtio-blk-pci", "virtio-scsi-pci", "scsi-hd", "nvme", "virtio-net-pci", "e1000e",
            "virtio-balloon-pci", "virtio-scsi-pci", "scsi-hd", "virtio-net-pci", "pc-dimm",
        ])
    }

    @Test("building is deterministic and LiveConfig round-trips through Codable")
    func deterministicAndCodable() throws {
        let config = LiveConfig(profile: Fixture.rich(), hotplugged: Fixture.richHotplugged())
        let data = try JSONEncoder().encode(config)
        let decoded = try JSONDecoder().decode(LiveConfig.self, from: data)
        #expect(decoded == config)
        #expect(QEMUArgv.build(decoded, Fixture.runtime()) == QEMUArgv.build(config, Fixture.runtime()))
    }
}

/// Splits QemuOpts text the way QEMU does: `,` separates, `,,` is a literal comma.
func unescapedOptions(_ text: String) -> [String] {
    var parts: [String] = []
    var current = ""
    var scalars = Array(text.unicodeScalars)[...]
    while let c = scalars.popFirst() {
        if c == "," {
            if scalars.first == "," {
                scalars.removeFirst()
                current += ","
            } else {
                parts.append(current)
                current = ""
            }
        } else {
            current.unicodeScalars.append(c)
        }
    }
    parts.append(current)
    return parts
}

@Suite struct HotpluggedCPUArgvTests {
    @Test func bootCountStaysAndPluggedVCPUsBecomeDevices() {
        let profile = Profile(name: "vm", accel: .tcg, cpu: CPU(count: 1, max: 4), memory: Memory(size: .mib(256)))
        let config = LiveConfig(profile: profile, hotplugged: HotplugState(onlineCPUs: 3))
        let args = QEMUArgv.build(config, RuntimeOptions(accel: .tcg, qmpSocket: "/q"))
        #expect(args.value(of: "-smp") == "1,maxcpus=4")
        let cpus = args.values(of: "-device").filter { $0.contains("x86_64-cpu") }
        #expect(cpus == [
            #"{"driver":"max-x86_64-cpu","id":"cpu-s0-c1-t0","socket-id":0,"core-id":1,"thread-id":0}"#,
            #"{"driver":"max-x86_64-cpu","id":"cpu-s0-c2-t0","socket-id":0,"core-id":2,"thread-id":0}"#,
        ])
    }

    @Test func topologyMapsIndexesToSocketCoreThread() {
        let cpu = CPU(count: 1, max: 8, sockets: 2, cores: 2, threads: 2)
        let ids = (0..<8).map { DeviceProps.cpuDevice(index: $0, cpu: cpu, model: "host")["id"]?.stringValue ?? "" }
        #expect(ids == ["cpu-s0-c0-t0", "cpu-s0-c0-t1", "cpu-s0-c1-t0", "cpu-s0-c1-t1",
                        "cpu-s1-c0-t0", "cpu-s1-c0-t1", "cpu-s1-c1-t0", "cpu-s1-c1-t1"])
        #expect(DeviceProps.cpuDevice(index: 3, cpu: cpu, model: "host")["driver"]?.stringValue == "host-x86_64-cpu")
    }
}

@Suite("display") struct DisplayArgvTests {
    @Test func aVNCDisplayListensNowhereAndTheVideoDeviceHasTheNextRootSlot() {
        var profile = Fixture.minimal()
        profile.display = Display(vga: .virtio, vnc: true)
        let args = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        #expect(args.value(of: "-vnc") == "none")
        #expect(args.value(of: "-display") == "none")
        let video = args.values(of: "-device").first { $0.contains("video0") }
        #expect(video == #"{"driver":"virtio-vga","id":"video0","bus":"pcie.0","addr":"01.0"}"#)
        profile.display = Display(vga: .bochs, vnc: false)
        let quiet = QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime())
        #expect(quiet.value(of: "-vnc") == nil)
        #expect(quiet.values(of: "-device").contains { $0.contains(#""driver":"bochs-display""#) })
        profile.display = nil
        #expect(!QEMUArgv.build(LiveConfig(profile: profile), Fixture.runtime()).values(of: "-device")
            .contains { $0.contains("video0") })
    }
}
