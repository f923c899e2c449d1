import CorralModel
import Profiles

/// libvirt domain XML (`virsh dumpxml NAME`) → a corral profile, the disk images and a note for everything the
/// profile does not carry as it was. Pure: it reads no file and looks at no host. docs/import.md has the mapping
/// table.
///
/// Every element and attribute of the document is either mapped, explained by a note made while mapping, or
/// reported at the end as not carried, with what corral does instead.
public enum LibvirtImport {
    /// Maps a domain. Throws for XML that is not well-formed (or refused), for a document that is not a domain, for
    /// values that cannot be read (a size with an unknown unit), for more devices than `ImportLimits` allows, and
    /// when the resulting profile does not pass the profile validator; the error names the XPath and line.
    public static func importDomain(_ xml: String, options: ImportOptions = ImportOptions()) throws(ImportError)
        -> ImportResult {
        let document: XMLDocument
        do {
            document = try XMLDocument.parse(xml)
        } catch {
            throw ImportError(error)
        }
        var mapper = LibvirtMapper(root: SourceNode(root: document.root, alwaysIndexed: ["devices"]),
                                   options: options)
        return try mapper.run()
    }
}

struct LibvirtMapper {
    let root: SourceNode
    let options: ImportOptions
    var map = Mapping()
    var profile = Profile(name: "imported", memory: Memory(size: .mib(1)))
    var disks: [ImportedDisk] = []
    /// `os/type`, which carries the machine type.
    var machineNode: SourceNode?

    init(root: SourceNode, options: ImportOptions) {
        self.root = root
        self.options = options
    }

    mutating func run() throws(ImportError) -> ImportResult {
        guard root.name == "domain" else {
            throw map.error(root, "not a libvirt domain: the root element is <\(root.name)>, expected <domain> "
                + "(the output of virsh dumpxml)")
        }
        try mapDomainType()
        try mapName()
        try mapOS()
        try mapCPU()
        try mapMemory()
        try mapCPUTune()
        if let devices = root.child("devices") {
            try mapDisks(devices)
            try mapInterfaces(devices)
            try mapHostdevs(devices)
            if !profile.hostdevs.isEmpty && !(profile.machine == "q35" || profile.machine.hasPrefix("pc-q35-")) {
                let was = profile.machine
                profile.machine = "q35"
                if let type = machineNode {
                    map.note(type, "machine \(was) with host devices", "machine: q35: corral puts each host device on "
                        + "its own PCI Express root port, which i440fx has not")
                }
            }
            mapChannels(devices)
            mapDisplay(devices)
            mapBalloon(devices)
            if options.compat {
                map.note(devices, "compat", "disks on NVMe and NICs as e1000e, which every guest OS drives "
                    + "without virtio drivers; switch to virtio-blk and virtio-net once the guest has them")
            }
        }
        try map.validate(profile, root: root)
        let notes = map.sortedNotes(adding: root.unreadNotes(explain: Self.explain))
        return ImportResult(profile: profile, disks: disks, notes: notes)
    }

    // MARK: - Domain

    mutating func mapDomainType() throws(ImportError) {
        guard let type = root.attribute("type") else {
            throw map.error(root, "the domain has no type (expected type='kvm' or type='qemu')")
        }
        switch type {
        case "kvm": profile.accel = .kvm
        case "qemu": profile.accel = .tcg
        default:
            throw map.error(root, attribute: "type", "type '\(ImportText.shown(type))' is not a QEMU domain; "
                + "corral imports type='kvm' and type='qemu'")
        }
    }

    mutating func mapName() throws(ImportError) {
        let nameNode = root.child("name")
        let written = nameNode?.text ?? ""
        if let name = options.name {
            profile.name = name
            if let nameNode { map.note(nameNode, "name '\(ImportText.shown(written))'", "named '\(name)' as asked") }
            return
        }
        guard let nameNode else { throw map.error(root, "the domain has no <name>; give one with --name") }
        guard let name = ImportText.vmName(written) else {
            throw map.error(nameNode, "'\(ImportText.shown(written))' has nothing to make a VM name of "
                + "(\(VMName.rule)); give one with --name")
        }
        profile.name = name
        map.origin("name", nameNode)
        if name != written {
            map.note(nameNode, "name '\(ImportText.shown(written))'", "named '\(name)' (\(VMName.rule))")
        }
    }

    // MARK: - OS and firmware

    mutating func mapOS() throws(ImportError) {
        guard let os = root.child("os") else { return }
        if let firmware = os.attribute("firmware") {
            switch firmware {
            case "efi": profile.boot.firmware = .uefi
            case "bios": profile.boot.firmware = .bios
            default:
                throw map.error(os, attribute: "firmware", "firmware '\(ImportText.shown(firmware))' is not efi or bios")
            }
        }
        if let type = os.child("type") {
            let kind = type.text
            guard kind == "hvm" else {
                throw map.error(type, "os type '\(ImportText.shown(kind))' is not a full virtual machine (hvm)")
            }
            if let arch = type.attribute("arch"), arch != "x86_64" {
                map.note(type, attribute: "arch", "arch='\(ImportText.shown(arch))'",
                         "corral runs x86_64 guests (qemu-system-x86_64); a \(arch) guest will not boot as it is")
            }
            if let machine = type.attribute("machine") { mapMachine(machine, type) }
        }
        if let loader = os.child("loader") {
            let isPflash = loader.attribute("type") == "pflash"
            let path = loader.text
            if isPflash || path.lowercased().contains("ovmf") || path.lowercased().contains("edk2") {
                profile.boot.firmware = .uefi
                loader.useAll()
                map.note(loader, loader.summary, "firmware: uefi; corral uses the host's OVMF code file, not this one")
            } else {
                loader.useAll()
                map.note(loader, loader.summary, "not carried: not a UEFI pflash loader; corral boots SeaBIOS "
                    + "(firmware: bios)")
            }
        }
        if let nvram = os.child("nvram") {
            nvram.useAll()
            map.note(nvram, nvram.summary, "not carried: the VM starts with a fresh UEFI variable store, so boot "
                + "entries are gone; the guest's fallback loader (\\EFI\\BOOT\\BOOTX64.EFI) still boots")
        }
        if let kernel = os.child("kernel") {
            profile.boot.kernel = try map.absolutePath(kernel.text, kernel)
            map.origin("boot.kernel", kernel)
        }
        if let initrd = os.child("initrd") {
            profile.boot.initrd = try map.absolutePath(initrd.text, initrd)
            map.origin("boot.initrd", initrd)
        }
        if let cmdline = os.child("cmdline") {
            profile.boot.cmdline = cmdline.element.text
            map.origin("boot.cmdline", cmdline)
        }
        for boot in os.children("boot") {
            boot.useAll()
            map.note(boot, boot.summary, "not carried: the firmware boots the disks in profile order")
        }
    }

    mutating func mapMachine(_ machine: String, _ type: SourceNode) {
        map.origin("machine", type)
        machineNode = type
        if machine == "q35" || machine == "pc" {
            profile.machine = machine
        } else if machine.hasPrefix("pc-q35-") {
            profile.machine = "q35"
            map.note(type, attribute: "machine", "machine='\(ImportText.shown(machine))'",
                     "machine: q35, the newest q35 of the host's QEMU; write \(machine) in the profile to keep that "
                        + "version")
        } else if machine.hasPrefix("pc-i440fx-") || machine.hasPrefix("pc-") {
            profile.machine = "pc"
            map.note(type, attribute: "machine", "machine='\(ImportText.shown(machine))'",
                     "machine: pc (i440fx), the newest of the host's QEMU; q35 is corral's default and takes more "
                        + "devices and hotplug")
        } else {
            profile.machine = "q35"
            map.note(type, attribute: "machine", "machine='\(ImportText.shown(machine))'",
                     "machine: q35: corral runs q35 and pc (i440fx) machines")
        }
    }

    // MARK: - CPU

    mutating func mapCPU() throws(ImportError) {
        if let vcpu = root.child("vcpu") {
            guard let max = ImportText.count(vcpu.text, limit: 4096), max >= 1 else {
                throw map.error(vcpu, "'\(ImportText.shown(vcpu.text))' is not a vCPU count")
            }
            var count = max
            if let current = vcpu.attribute("current") {
                guard let n = ImportText.count(current, limit: 4096) else {
                    throw map.error(vcpu, attribute: "current", "'\(ImportText.shown(current))' is not a vCPU count")
                }
                count = n
            }
            profile.cpu.count = count
            profile.cpu.max = max
            map.origin("cpu", vcpu)
            map.origin("cpu.count", vcpu)
            map.origin("cpu.max", vcpu)
            if let placement = vcpu.attribute("placement"), placement != "static" {
                map.note(vcpu, attribute: "placement", "placement='\(ImportText.shown(placement))'",
                         "not carried: vCPUs are not placed by numad")
            }
            if let cpuset = vcpu.attribute("cpuset") {
                map.note(vcpu, attribute: "cpuset", "cpuset='\(ImportText.shown(cpuset))'",
                         "not carried: vCPUs float over all host CPUs (cpu.pinning pins single vCPUs)")
            }
        }
        if let vcpus = root.child("vcpus") {
            vcpus.useAll()
            map.note(vcpus, vcpus.summary, "not carried: corral brings vCPUs 0…count-1 online at boot")
        }
        guard let cpu = root.child("cpu") else { return }
        if let mode = cpu.attribute("mode") {
            switch mode {
            case "host-passthrough", "host-model":
                profile.cpu.model = "host"
                if mode == "host-model" {
                    map.note(cpu, attribute: "mode", "mode='host-model'", "cpu.model: host (the host CPU passed "
                        + "through, not a named model close to it); a migration needs hosts with the same CPU")
                }
            case "maximum":
                profile.cpu.model = "max"
            case "custom":
                if let model = cpu.child("model") {
                    let name = model.text
                    profile.cpu.model = name
                    map.origin("cpu.model", model)
                }
            default:
                throw map.error(cpu, attribute: "mode", "cpu mode '\(ImportText.shown(mode))' is not one of "
                    + "host-passthrough, host-model, maximum, custom")
            }
        } else if let model = cpu.child("model") {
            profile.cpu.model = model.text
            map.origin("cpu.model", model)
        }
        if let topology = cpu.child("topology") {
            var values: [String: Int] = [:]
            for key in ["sockets", "dies", "clusters", "cores", "threads"] {
                guard let text = topology.attribute(key) else { continue }
                guard let n = ImportText.count(text, limit: 4096), n >= 1 else {
                    throw map.error(topology, attribute: key, "'\(ImportText.shown(text))' is not a count of \(key)")
                }
                values[key] = n
            }
            let dies = values["dies"] ?? 1, clusters = values["clusters"] ?? 1
            profile.cpu.sockets = (values["sockets"] ?? 1) * dies * clusters
            profile.cpu.cores = values["cores"] ?? 1
            profile.cpu.threads = values["threads"] ?? 1
            map.origin("cpu.sockets", topology)
            if dies > 1 || clusters > 1 {
                let key = dies > 1 ? "dies" : "clusters"
                map.note(topology, attribute: key, "\(key)='\(dies > 1 ? dies : clusters)'",
                         "cpu.sockets: \(profile.cpu.sockets ?? 1) (sockets × dies × clusters): corral's topology "
                            + "has sockets, cores and threads")
            }
        }
        if let check = cpu.attribute("check") {
            map.note(cpu, attribute: "check", "check='\(ImportText.shown(check))'",
                     "not needed: QEMU checks the CPU model itself")
        }
        if let migratable = cpu.attribute("migratable") {
            map.note(cpu, attribute: "migratable", "migratable='\(ImportText.shown(migratable))'",
                     "not carried: corral's host CPU keeps QEMU's migratable default")
        }
    }

    mutating func mapCPUTune() throws(ImportError) {
        guard let tune = root.child("cputune") else { return }
        if let shares = tune.child("shares") {
            guard let value = ImportText.integer(shares.text) else {
                throw map.error(shares, "'\(ImportText.shown(shares.text))' is not a number of CPU shares")
            }
            // corral writes cpu.shares = weight × 1024 / 100 on cgroup v1 hosts; this is its inverse.
            let weight = Int(clamping: min(UInt64(OvercommitLimits.cpuWeight.upperBound),
                                           max(1, (value * 100 + 512) / 1024)))
            profile.overcommit.cpuWeight = weight
            map.origin("overcommit.cpuWeight", shares)
            map.note(shares, "cpu shares \(value)", "overcommit.cpuWeight: \(weight) (weight = shares × 100 / 1024, "
                + "the inverse of how corral writes cpu.shares on cgroup v1 hosts; 1024 shares = weight 100)")
        }
        let period = tune.child("period").map { $0.text }
        let quota = tune.child("quota").map { $0.text }
        let globalPeriod = tune.child("global_period").map { $0.text }
        let globalQuota = tune.child("global_quota").map { $0.text }
        if let percent = try quotaPercent(tune, quota: globalQuota, period: globalPeriod, perVCPU: false) {
            profile.overcommit.cpuQuotaPercent = percent
        } else if let percent = try quotaPercent(tune, quota: quota, period: period, perVCPU: true) {
            profile.overcommit.cpuQuotaPercent = percent
        }
        let pins = tune.children("vcpupin")
        if !pins.isEmpty { mapPinning(pins) }
    }

    /// A cgroup quota as a percentage of one host CPU; nil when none is set (or it is -1, unlimited).
    mutating func quotaPercent(_ tune: SourceNode, quota: String?, period: String?, perVCPU: Bool)
        throws(ImportError) -> Int? {
        let name = perVCPU ? "quota" : "global_quota"
        guard let quota, let node = tune.child(name) else { return nil }
        if quota.hasPrefix("-") { return nil }
        guard let q = ImportText.integer(quota), q > 0 else {
            throw map.error(node, "'\(ImportText.shown(quota))' is not a quota in microseconds")
        }
        let p = period.flatMap { ImportText.integer($0) } ?? 100_000
        guard p > 0 else { throw map.error(node, "the period is 0") }
        let vcpus = UInt64(max(1, profile.cpu.max))
        let total = (q.multipliedReportingOverflow(by: perVCPU ? vcpus * 100 : 100).partialValue + p / 2) / p
        let percent = Int(clamping: min(max(total, 1), UInt64(OvercommitLimits.cpuQuotaPercent.upperBound)))
        map.origin("overcommit.cpuQuota", node)
        let how = perVCPU
            ? "quota \(q) µs per \(p) µs for each of \(vcpus) vCPUs"
            : "quota \(q) µs per \(p) µs for the whole VM"
        map.note(node, "\(name) \(q)", "overcommit.cpuQuota: \(percent)% (\(how); corral limits the whole VM)")
        return percent
    }

    /// `<vcpupin vcpu='N' cpuset='M'/>` for vCPUs 0…k-1, each on one host CPU → `cpu.pinning`; otherwise none is
    /// carried and each is noted.
    mutating func mapPinning(_ pins: [SourceNode]) {
        var byVCPU: [Int: Int] = [:]
        var carried = true
        for pin in pins {
            guard let vcpu = pin.element.attribute("vcpu").flatMap({ ImportText.count($0, limit: 4096) }),
                  let cpu = pin.element.attribute("cpuset").flatMap({ ImportText.count($0, limit: 1023) }),
                  byVCPU[vcpu] == nil else {
                carried = false
                continue
            }
            byVCPU[vcpu] = cpu
        }
        if carried, !byVCPU.isEmpty, byVCPU.keys.sorted() == Array(0..<byVCPU.count), byVCPU.count <= profile.cpu.max {
            profile.cpu.pinning = (0..<byVCPU.count).map { byVCPU[$0]! }
            for pin in pins { pin.useAll() }
            map.origin("cpu.pinning", pins[0])
            return
        }
        for pin in pins {
            pin.useAll()
            let cpuset = pin.element.attribute("cpuset") ?? ""
            map.note(pin, attribute: "cpuset", "vCPU \(pin.element.attribute("vcpu") ?? "?") on host CPUs "
                + "'\(ImportText.shown(cpuset))'",
                "not carried: cpu.pinning puts vCPUs 0, 1, 2… each on one host CPU; these pins are not all of that "
                    + "kind, so no vCPU is pinned")
        }
    }

    // MARK: - Memory

    /// A size element (`<memory unit='KiB'>2097152</memory>`); libvirt's default unit is KiB.
    mutating func size(_ node: SourceNode) throws(ImportError) -> ByteSize {
        let unit = node.attribute("unit") ?? "KiB"
        guard LibvirtUnits.factor(unit) != nil else {
            throw map.error(node, attribute: "unit", "unit '\(ImportText.shown(unit))' is not one of "
                + LibvirtUnits.allowed)
        }
        guard let bytes = LibvirtUnits.bytes(node.text, unit: unit) else {
            throw map.error(node, "'\(ImportText.shown(node.text))' \(unit) is not a size")
        }
        return ByteSize(bytes: bytes)
    }

    mutating func mapMemory() throws(ImportError) {
        guard let memory = root.child("memory") else {
            throw map.error(root, "the domain has no <memory>")
        }
        profile.memory.size = try size(memory)
        map.origin("memory", memory)
        map.origin("memory.size", memory)
        if let dump = memory.attribute("dumpCore") {
            map.note(memory, attribute: "dumpCore", "dumpCore='\(dump)'", "not carried: QEMU's default")
        }
        if let current = root.child("currentMemory") {
            let currentSize = try size(current)
            if currentSize < profile.memory.size {
                map.note(current, "currentMemory \(currentSize)", "not carried: the guest boots with memory.size "
                    + "(\(profile.memory.size)); the balloon policy (or corral balloon) shrinks it later")
            }
        }
        if let maxMemory = root.child("maxMemory") {
            let maxSize = try size(maxMemory)
            let slotsText = maxMemory.attribute("slots") ?? "0"
            guard let slots = ImportText.count(slotsText, limit: 4096) else {
                throw map.error(maxMemory, attribute: "slots", "'\(ImportText.shown(slotsText))' is not a slot count")
            }
            if slots > 0 && maxSize > profile.memory.size {
                profile.memory.max = maxSize
                profile.memory.slots = slots
                map.origin("memory.max", maxMemory)
                map.origin("memory.slots", maxMemory)
            } else {
                map.note(maxMemory, maxMemory.summary, "not carried: no room for memory hotplug above memory.size")
            }
        }
        if let backing = root.child("memoryBacking") {
            if backing.child("hugepages") != nil {
                profile.memory.hugepages = true
                map.origin("memory.hugepages", backing)
                backing.child("hugepages")?.useAll()
                map.note(backing, "hugepages", "memory.hugepages: true (2M pages from /dev/hugepages; page sizes "
                    + "and NUMA nodes are not carried)")
            }
            if backing.child("locked") != nil { profile.memory.lock = true }
            if backing.child("nosharepages") != nil { profile.memory.merge = false }
        }
    }

    mutating func mapBalloon(_ devices: SourceNode) {
        guard let balloon = devices.child("memballoon") else { return }
        let model = balloon.attribute("model") ?? "virtio"
        guard model != "none" else { return }
        if !profile.hostdevs.isEmpty {
            balloon.useAll()
            map.note(balloon, balloon.summary, "not carried: with host devices all guest memory is pinned for their "
                + "DMA, so a balloon could give none back")
            return
        }
        if model.hasPrefix("virtio") {
            var settings = Balloon(min: ByteSize(bytes: profile.memory.size.bytes / 2))
            if balloon.attribute("freePageReporting") == "off" { settings.freePageReporting = false }
            profile.memory.balloon = settings
            map.origin("memory.balloon", balloon)
            map.note(balloon, "virtio balloon", "memory.balloon with min \(settings.min!) (half of memory.size, "
                + "corral's default floor for its balloon policy)")
        } else {
            map.note(balloon, attribute: "model", "model='\(ImportText.shown(model))'", "not carried: no balloon")
        }
    }

    // MARK: - What is not carried

    /// Why an element or attribute (its path without indices) is not carried, and what corral does instead.
    static func explain(_ pattern: String) -> String {
        if let reason = reasons[pattern] { return reason }
        let last = pattern.split(separator: "/").last.map(String.init) ?? pattern
        if last == "address" { return "not kept: corral places devices itself" }
        if last == "alias" { return "not needed: corral names devices by their profile id" }
        if last == "boot" || last == "@bootindex" { return "not carried: the firmware boots the disks in profile order" }
        if pattern.hasPrefix("/domain/devices/") {
            let device = pattern.dropFirst("/domain/devices/".count).split(separator: "/").first.map(String.init) ?? ""
            if let reason = deviceReasons[device] { return reason }
        }
        return "not carried: corral has no equivalent; ignored"
    }

    static let deviceReasons: [String: String] = [
        "graphics": "not carried: corral VMs have no display; the serial console is logged (corral console)",
        "video": "not carried: corral VMs have no display",
        "sound": "not carried: corral gives no sound device",
        "audio": "not carried: corral gives no sound device",
        "input": "not carried: no input devices beyond the machine's own",
        "channel": "not carried: the only channel corral makes is the guest agent's (agent: true)",
        "serial": "corral gives every VM one serial port, logged to a file (serial: log)",
        "console": "corral gives every VM one serial port, logged to a file (serial: log)",
        "controller": "not carried: corral lays out its own buses and controllers",
        "emulator": "not carried: corral runs qemu.binary (qemu-system-x86_64 from PATH)",
        "memballoon": "not carried beyond the balloon itself (memory.balloon)",
        "rng": "not carried: no entropy device",
        "watchdog": "not carried: no watchdog device",
        "panic": "not carried: no panic notifier",
        "tpm": "not carried: no TPM",
        "redirdev": "not carried: no USB redirection",
        "smartcard": "not carried: no smartcard",
        "hub": "not carried: no USB hub",
        "filesystem": "not carried: no shared folders",
        "interface": "not carried",
        "disk": "not carried",
    ]

    static let reasons: [String: String] = [
        "/domain/@id": "not needed: the id of a running libvirt domain",
        "/domain/uuid": "not needed: corral derives the VM's UUID from its name",
        "/domain/genid": "not carried: no VM generation id",
        "/domain/title": "not carried: write it as a comment in the profile",
        "/domain/description": "not carried: write it as a comment in the profile",
        "/domain/metadata": "not carried: libvirt application metadata",
        "/domain/currentMemory": "not needed: the same as memory",
        "/domain/currentMemory/@unit": "not needed: the same as memory",
        "/domain/vcpu/@placement": "not needed: static placement is the only kind",
        "/domain/clock": "not carried: QEMU's default clock (RTC in UTC); a Windows guest may show UTC time",
        "/domain/on_poweroff": "not carried: corral's restart policy (restart: no) decides what happens when QEMU exits",
        "/domain/on_reboot": "not carried: a guest reboot restarts the guest in the same QEMU",
        "/domain/on_crash": "not carried: corral's restart policy (restart: no) decides what happens when QEMU exits",
        "/domain/on_lockfailure": "not carried",
        "/domain/features": "not carried: the machine's ACPI and APIC are on; other features are QEMU's defaults",
        "/domain/pm": "not carried: QEMU's default suspend support",
        "/domain/seclabel": "not carried: corral confines each QEMU by its own uid and device cgroup",
        "/domain/resource": "not carried: corral puts each VM in its own cgroup",
        "/domain/os/type": "not needed: always hvm",
        "/domain/os/type/@arch": "not needed: x86_64",
        "/domain/os/smbios": "not carried: QEMU's default SMBIOS tables",
        "/domain/os/bootmenu": "not carried: no boot menu",
        "/domain/os/bios": "not carried",
        "/domain/cpu/feature": "not carried: CPU features follow cpu.model",
        "/domain/cpu/vendor": "not carried: the vendor follows cpu.model",
        "/domain/cpu/numa": "not carried: corral gives the guest one NUMA node",
        "/domain/cpu/cache": "not carried: QEMU's default cache topology",
        "/domain/cpu/model/@fallback": "not needed: QEMU runs the model as named (fallback is libvirt's choice of a "
            + "nearby model)",
        "/domain/cpu/@match": "not needed: QEMU runs the model as named",
        "/domain/numatune": "not carried: guest memory is not bound to host NUMA nodes",
        "/domain/memtune": "not carried: no memory cgroup limits (the balloon policy shares memory)",
        "/domain/blkiotune": "not carried: no block I/O weights",
        "/domain/iothreads": "not carried: QEMU's default I/O threads",
        "/domain/cputune/period": "see quota",
        "/domain/cputune/emulatorpin": "not carried: QEMU's own threads float over all host CPUs",
        "/domain/cputune/emulator_period": "not carried: only vCPU time is limited",
        "/domain/cputune/emulator_quota": "not carried: only vCPU time is limited",
        "/domain/cputune/iothread_period": "not carried",
        "/domain/cputune/iothread_quota": "not carried",
        "/domain/memoryBacking": "not carried beyond hugepages, locked and nosharepages",
        "/domain/devices/disk/target/@dev": "the disk's id in the profile; the guest names disks by bus order",
        "/domain/devices/disk/driver/@name": "not needed: QEMU opens the image",
        "/domain/devices/disk/driver/@io": "not carried: QEMU's default (threads)",
        "/domain/devices/disk/driver/@detect_zeroes": "not carried",
        "/domain/devices/disk/driver/@error_policy": "not carried: QEMU reports errors to the guest",
        "/domain/devices/disk/serial": "not carried: QEMU's default serial",
        "/domain/devices/disk/source/@index": "not needed",
        "/domain/devices/interface/target": "not kept: corral names the taps it makes",
        "/domain/devices/interface/source/@mode": "not needed",
        "/domain/devices/interface/link": "not carried: the link is up",
        "/domain/devices/interface/mtu": "not carried: the bridge's MTU",
        "/domain/devices/interface/bandwidth": "not carried: no traffic shaping",
        "/domain/devices/interface/virtualport": "not carried: corral attaches taps to Linux bridges",
        "/domain/devices/interface/filterref": "not carried: no libvirt nwfilter",
        "/domain/devices/interface/rom": "not carried: QEMU's default option ROM",
        "/domain/devices/hostdev/driver": "not needed: corral uses vfio-pci",
        "/domain/devices/hostdev/source/address/@type": "not needed: a PCI address",
        "/domain/devices/memballoon/stats": "not carried: corral polls balloon statistics itself",
        "/domain/devices/memballoon/@autodeflate": "not carried",
    ]
}
