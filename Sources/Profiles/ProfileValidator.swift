import CorralModel

/// Cross-field and value checks on a decoded profile. Each diagnostic points at the value it is about
/// (or, for a defaulted value, at the nearest enclosing value that was written) and names the value and
/// the limit or allowed set.
extension ProfileChecker {
    static let maxCPUs = 255
    static let maxMemorySlots = 256
    static let maxHotplugSlots = 32
    /// Highest host CPU number `cpu.pinning` accepts: glibc's `cpu_set_t` holds CPUs 0…1023.
    static let maxHostCPU = 1023
    /// Huge page size `memory.hugepages` assumes (x86-64's default hugetlbfs page size).
    static let hugePageSize = ByteSize.mib(2)

    /// Location of the value written for `path`, or of its nearest written ancestor.
    func location(of path: String) -> Location {
        var current = path
        while true {
            if let location = locations[current] { return location }
            if current.isEmpty { break }
            current = Self.parent(of: current)
        }
        return rootLocation
    }

    static func parent(of path: String) -> String {
        guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return "" }
        return String(path[..<cut])
    }

    /// True when `path` was explicitly written in the profile (always, for a profile that did not come from YAML).
    func given(_ path: String) -> Bool { everythingGiven || locations[path] != nil }

    /// True when none of `paths` (nor any of their ancestors) failed to decode.
    func usable(_ paths: String...) -> Bool {
        for path in paths {
            var current = path
            while true {
                if failed.contains(current) { return false }
                if current.isEmpty { break }
                current = Self.parent(of: current)
            }
        }
        return true
    }

    mutating func problem(_ path: String, _ message: String) {
        report(location(of: path), path, message)
    }

    // MARK: - Checks

    mutating func validate(_ profile: inout Profile, source: any ProfileSource, checkFiles: Bool) {
        validateName(profile)
        validateMachine(profile)
        validateCPU(profile)
        validateMemory(profile)
        validateBoot(profile, source: source, checkFiles: checkFiles)
        validateDisks(profile, source: source, checkFiles: checkFiles)
        validateNICs(&profile)
        validateHostDevices(&profile)
        validateCloudInit(profile, source: source, checkFiles: checkFiles)
        validateDeviceIDs(profile)
        validateHotplug(profile)
        validateQEMU(profile)
        validateOvercommit(profile)
        validateDisplay(profile)
    }

    mutating func validateDisplay(_ profile: Profile) {
        guard let display = profile.display, display.vnc, display.vga == .none else { return }
        problem("display.vnc", "a VNC display needs a video device: set display.vga to std, virtio or bochs")
    }

    mutating func validateName(_ profile: Profile) {
        guard given("name"), usable("name"), !VMName.isValid(profile.name) else { return }
        problem("name", "'\(profile.name)' is not a valid name (\(VMName.rule))")
    }

    mutating func validateMachine(_ profile: Profile) {
        guard usable("machine"), !Syntax.isMachineType(profile.machine) else { return }
        problem("machine", "'\(profile.machine)' is not one of q35, pc, pc-q35-X.Y, pc-i440fx-X.Y")
    }

    mutating func validateCPU(_ profile: Profile) {
        let cpu = profile.cpu
        validatePinning(cpu)
        if let model = cpu.model, usable("cpu.model") {
            if !Syntax.isCPUModel(model) {
                problem("cpu.model", "'\(model)' is not a CPU model name (letters, digits, '.', '_' and '-')")
            } else if model == "host" && profile.accel == .tcg && usable("accel") {
                problem("cpu.model", "'host' cannot be used with accel tcg (TCG cannot emulate the host CPU); "
                    + "use 'max'")
            }
        }
        guard usable("cpu.count", "cpu.max") else { return }
        if cpu.count < 1 {
            problem("cpu.count", "\(cpu.count) is less than 1")
        } else if given("cpu.max") && cpu.count > cpu.max {
            problem("cpu.count", "\(cpu.count) is more than cpu.max (\(cpu.max))")
        } else if cpu.max > Self.maxCPUs {
            let path = given("cpu.max") ? "cpu.max" : "cpu.count"
            problem(path, "\(cpu.max) is more than \(Self.maxCPUs)")
        }

        let topology = [("sockets", cpu.sockets), ("cores", cpu.cores), ("threads", cpu.threads)]
        guard topology.contains(where: { $0.1 != nil }),
              usable("cpu.sockets", "cpu.cores", "cpu.threads") else { return }
        var allInRange = true
        for (key, value) in topology {
            if let value, value < 1 {
                problem("cpu." + key, "\(value) is less than 1")
                allInRange = false
            } else if let value, value > Self.maxCPUs {
                problem("cpu." + key, "\(value) is more than \(Self.maxCPUs)")
                allInRange = false
            }
        }
        guard allInRange, cpu.max >= 1 else { return }
        let sockets = cpu.sockets ?? 1, cores = cpu.cores ?? 1, threads = cpu.threads ?? 1
        let product = sockets * cores * threads
        if product != cpu.max {
            problem("cpu", "sockets × cores × threads = \(sockets) × \(cores) × \(threads) = \(product) "
                + "must equal cpu.max (\(cpu.max))")
        }
    }

    /// One host CPU per vCPU at most, each a CPU number `sched_setaffinity` can take.
    mutating func validatePinning(_ cpu: CPU) {
        guard !cpu.pinning.isEmpty, usable("cpu.pinning") else { return }
        for (index, hostCPU) in cpu.pinning.enumerated() {
            let path = "cpu.pinning[\(index)]"
            if hostCPU < 0 {
                problem(path, "\(hostCPU) is less than 0")
            } else if hostCPU > Self.maxHostCPU {
                problem(path, "\(hostCPU) is more than \(Self.maxHostCPU) (the highest CPU number corral can pin to)")
            }
        }
        if usable("cpu.count", "cpu.max"), cpu.pinning.count > cpu.max {
            problem("cpu.pinning", "\(cpu.pinning.count) host CPUs are more than cpu.max (\(cpu.max)); "
                + "give one per vCPU at most")
        }
    }

    mutating func validateOvercommit(_ profile: Profile) {
        let overcommit = profile.overcommit
        if usable("overcommit.memoryShares"), overcommit.memoryShares < 1 {
            problem("overcommit.memoryShares", "\(overcommit.memoryShares) is less than 1")
        }
        if usable("overcommit.cpuWeight") {
            let weights = OvercommitLimits.cpuWeight
            if overcommit.cpuWeight < weights.lowerBound {
                problem("overcommit.cpuWeight", "\(overcommit.cpuWeight) is less than \(weights.lowerBound)")
            } else if overcommit.cpuWeight > weights.upperBound {
                problem("overcommit.cpuWeight", "\(overcommit.cpuWeight) is more than \(weights.upperBound)")
            }
        }
        if let quota = overcommit.cpuQuotaPercent, usable("overcommit.cpuQuota") {
            let quotas = OvercommitLimits.cpuQuotaPercent
            if quota < quotas.lowerBound {
                problem("overcommit.cpuQuota", "\(quota)% must be more than 0%")
            } else if quota > quotas.upperBound {
                problem("overcommit.cpuQuota", "\(quota)% is more than \(quotas.upperBound)% "
                    + "(\(Self.maxCPUs) CPUs, the vCPU limit)")
            }
        }
    }

    mutating func validateMemory(_ profile: Profile) {
        guard usable("memory") else { return }
        let memory = profile.memory
        let sizeUsable = usable("memory.size")
        if sizeUsable && memory.size.bytes == 0 {
            problem("memory.size", "must be more than 0")
        }
        if memory.hugepages, sizeUsable, usable("memory.hugepages"), memory.size.bytes % Self.hugePageSize.bytes != 0 {
            problem("memory.hugepages", "needs memory.size (\(memory.size)) to be a multiple of "
                + "\(Self.hugePageSize) (the huge page size)")
        }
        if let balloon = memory.balloon, let min = balloon.min, sizeUsable, usable("memory.balloon.min"),
           min > memory.size {
            problem("memory.balloon.min", "\(min) is more than memory.size (\(memory.size))")
        }
        var slotsInRange = usable("memory.slots")
        if slotsInRange && memory.slots < 0 {
            problem("memory.slots", "\(memory.slots) is less than 0")
            slotsInRange = false
        } else if slotsInRange && memory.slots > Self.maxMemorySlots {
            problem("memory.slots", "\(memory.slots) is more than \(Self.maxMemorySlots) (QEMU's limit)")
            slotsInRange = false
        }
        guard sizeUsable, usable("memory.max") else { return }
        if let max = memory.max, max < memory.size {
            problem("memory.max", "\(max) is less than memory.size (\(memory.size))")
            return
        }
        guard slotsInRange else { return }
        let growable = memory.max.map { $0 > memory.size } ?? false
        if memory.slots > 0 && !growable {
            problem("memory.slots", "\(memory.slots) needs memory.max larger than memory.size (\(memory.size))")
        } else if growable && memory.slots == 0, let max = memory.max {
            problem("memory.max", "\(max) is more than memory.size (\(memory.size)), "
                + "which needs memory.slots of at least 1")
        }
    }

    mutating func validateBoot(_ profile: Profile, source: any ProfileSource, checkFiles: Bool) {
        let boot = profile.boot
        let hasKernel = boot.kernel != nil || !usable("boot.kernel")
        if boot.initrd != nil && !hasKernel {
            problem("boot.initrd", "needs boot.kernel (an initrd is only used for direct kernel boot)")
        }
        if boot.cmdline != nil && !hasKernel {
            problem("boot.cmdline", "needs boot.kernel (a command line is only used for direct kernel boot)")
        }
        // Each reaches QEMU as one argv element, which exec would cut at a NUL byte.
        for (key, text) in [("kernel", boot.kernel), ("initrd", boot.initrd), ("cmdline", boot.cmdline)] {
            if let text, text.utf8.contains(0) { problem("boot." + key, "must not contain a NUL byte") }
        }
        guard checkFiles else { return }
        for (key, file) in [("kernel", boot.kernel), ("initrd", boot.initrd)] {
            if let file, !source.exists(file) {
                problem("boot." + key, "\(file) does not exist")
            }
        }
    }

    mutating func validateDisks(_ profile: Profile, source: any ProfileSource, checkFiles: Bool) {
        var firstUser: [String: String] = [:]
        for (index, disk) in profile.disks.enumerated() {
            let path = "disks[\(index)]"
            // open(2) would stop at the NUL and open another file.
            if disk.file.utf8.contains(0) { problem(path + ".file", "must not contain a NUL byte") }
            if let size = disk.size, usable(path + ".size"), size.bytes == 0 {
                problem(path + ".size", "must be more than 0")
            }
            if let backing = disk.backing, usable(path + ".backing") {
                if backing.utf8.contains(0) {
                    problem(path + ".backing", "must not contain a NUL byte")
                } else if disk.format != .qcow2, usable(path + ".format") {
                    problem(path + ".format", "an overlay on a base image is qcow2, got \(disk.format.rawValue)")
                } else if backing == disk.file {
                    problem(path + ".backing", "is the disk's own file")
                } else if checkFiles, !source.exists(backing) {
                    problem(path + ".backing", "\(backing) does not exist")
                }
            }
            guard usable(path + ".file"), !disk.isManaged else { continue }
            if let other = firstUser[disk.file] {
                problem(path + ".file", "\(disk.file) is already used by \(other)")
                continue
            }
            firstUser[disk.file] = path
            guard checkFiles, !source.exists(disk.file) else { continue }
            if disk.size == nil && disk.backing == nil {
                if usable(path + ".size") {
                    problem(path + ".file", "\(disk.file) does not exist and no size is given to create it")
                }
            } else if disk.readonly {
                problem(path + ".readonly", "\(disk.file) does not exist, and a read-only disk cannot be created")
            }
        }
    }

    mutating func validateNICs(_ profile: inout Profile) {
        for index in profile.nics.indices {
            let nic = profile.nics[index]
            let path = "nics[\(index)]"
            if let mac = nic.mac, usable(path + ".mac") {
                if !MACAddress.isValid(mac) {
                    problem(path + ".mac", "'\(mac)' is not a MAC address (six hex pairs like 52:54:00:12:34:56)")
                } else if !MACAddress.isUnicast(mac) {
                    problem(path + ".mac", "'\(mac)' is a multicast address; the first octet must be even")
                } else {
                    profile.nics[index].mac = mac.lowercased()
                }
            }
            for (key, name) in [("bridge", nic.bridge), ("ifname", nic.ifname), ("parent", nic.parent)] {
                if let name, usable(path + "." + key), !InterfaceName.isValid(name) {
                    problem(path + "." + key, "'\(name)' is not a valid interface name (\(InterfaceName.rule))")
                }
            }
            guard usable(path + ".mode") else { continue }
            switch nic.mode {
            case .bridge where nic.bridge == nil && usable(path + ".bridge"):
                problem(path + ".mode", "bridge needs 'bridge' (the host bridge to attach to)")
            case .network where nic.network == nil && usable(path + ".network"):
                problem(path + ".mode", "network needs 'network' (a managed network: corral network ls)")
            case .macvtap where nic.parent == nil && usable(path + ".parent"):
                problem(path + ".mode", "macvtap needs 'parent' (the host interface it sits on, e.g. eth0)")
            default:
                break
            }
            if let network = nic.network, usable(path + ".network") {
                if nic.mode != .network {
                    problem(path + ".network", "is only used with mode network (mode is \(nic.mode.rawValue))")
                } else if !NetworkName.isValid(network) {
                    problem(path + ".network", "'\(network)' is not a network name (\(NetworkName.rule))")
                }
            }
            if nic.parent != nil && nic.mode != .macvtap {
                problem(path + ".parent", "is only used with mode macvtap (mode is \(nic.mode.rawValue))")
            }
            if nic.macvtapMode != nil && nic.mode != .macvtap {
                problem(path + ".macvtapMode", "is only used with mode macvtap (mode is \(nic.mode.rawValue))")
            }
            let ownTap = nic.mode == .bridge || nic.mode == .macvtap || nic.mode == .network
                || (nic.mode == .tap && nic.ifname == nil)
            if let queues = nic.queues, usable(path + ".queues") {
                if !ownTap {
                    problem(path + ".queues", "is only used on a tap corral makes (mode bridge or macvtap, or tap without ifname)")
                } else if nic.model != .virtioNet {
                    problem(path + ".queues", "needs model virtio-net (model is \(nic.model.rawValue))")
                } else if !(1...16).contains(queues) {
                    problem(path + ".queues", "must be between 1 and 16, got \(queues)")
                }
            }
            if nic.vhost != nil, usable(path + ".vhost"), !ownTap || nic.model != .virtioNet {
                problem(path + ".vhost", "is only used with model virtio-net on a tap corral makes (mode bridge or macvtap, or tap without ifname)")
            }
            if nic.bridge != nil && nic.mode != .bridge {
                problem(path + ".bridge", "is only used with mode bridge (mode is \(nic.mode.rawValue))")
            }
            if nic.ifname != nil && nic.mode != .tap {
                problem(path + ".ifname", "is only used with mode tap (mode is \(nic.mode.rawValue))")
            }
        }
    }

    /// Disk, NIC and host device ids become QEMU device ids, so they share one namespace.
    mutating func validateDeviceIDs(_ profile: Profile) {
        let devices = profile.disks.enumerated().map { ("disks[\($0.offset)]", $0.element.id) }
            + profile.nics.enumerated().map { ("nics[\($0.offset)]", $0.element.id) }
            + profile.hostdevs.enumerated().map { ("hostdevs[\($0.offset)]", $0.element.id) }
        var firstUser: [String: String] = [:]
        for (path, id) in devices where usable(path + ".id") {
            if !DeviceID.isValid(id) {
                problem(path + ".id", "'\(id)' is not a valid device id (\(DeviceID.rule))")
            } else if let other = firstUser[id] {
                problem(path + ".id", "'\(id)' is already used by \(other)")
            } else {
                firstUser[id] = path
            }
        }
    }

    mutating func validateHotplug(_ profile: Profile) {
        let slots = profile.hotplug.slots
        guard usable("hotplug.slots") else { return }
        if slots < 0 {
            problem("hotplug.slots", "\(slots) is less than 0")
        } else if slots > Self.maxHotplugSlots {
            problem("hotplug.slots", "\(slots) is more than \(Self.maxHotplugSlots)")
        }
    }

    mutating func validateQEMU(_ profile: Profile) {
        let binary = profile.qemu.binary
        guard usable("qemu.binary") else { return }
        if binary.isEmpty {
            problem("qemu.binary", "must not be empty")
        } else if binary.utf8.contains(0) {
            // argv[0] and the path exec opens: both would stop at the NUL.
            problem("qemu.binary", "must not contain a NUL byte")
        } else if binary.contains(where: \.isWhitespace) {
            problem("qemu.binary", "'\(binary)' must not contain whitespace")
        }
    }
}

/// Syntax of the profile-only identifiers, checked by hand (no regex engine needed for these). Names that requests
/// carry too (VM names, device ids, MACs, interface names) are defined in CorralModel (`Identifiers.swift`).
enum Syntax {
    static func isASCIILetter(_ c: Character) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c)
    }

    static func isASCIIDigit(_ c: Character) -> Bool {
        ("0"..."9").contains(c)
    }

    /// q35, pc, pc-q35-X.Y, pc-i440fx-X.Y
    static func isMachineType(_ machine: String) -> Bool {
        if machine == "q35" || machine == "pc" { return true }
        for prefix in ["pc-q35-", "pc-i440fx-"] where machine.hasPrefix(prefix) {
            let version = machine.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
            return version.count == 2 && version.allSatisfy { !$0.isEmpty && $0.allSatisfy(isASCIIDigit) }
        }
        return false
    }

    /// QEMU CPU model names: `host`, `max`, `Skylake-Server-v4`, `qemu64`…
    static func isCPUModel(_ model: String) -> Bool {
        guard let first = model.first, isASCIILetter(first) || isASCIIDigit(first) else { return false }
        return model.allSatisfy { isASCIILetter($0) || isASCIIDigit($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }
}
