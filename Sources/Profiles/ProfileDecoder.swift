import CorralModel

/// Turns a merged profile tree into a `Profile`, strictly: unknown keys, wrong types and values outside an
/// enum are reported, and decoding goes on so that every problem is found in one pass.
///
/// Besides the value it remembers, per field path, where the value was written (`locations`) and which
/// fields could not be decoded (`failed`), so the validator can point at values and skip checks whose
/// inputs are already known to be wrong.
struct ProfileChecker {
    /// Where the document starts: the fallback location for problems with no better place.
    let rootLocation: Location
    var diagnostics: [Diagnostic] = []
    /// Field path → location of the value written for it. Only explicitly given (non-null) values.
    var locations: [String: Location] = [:]
    /// Field paths whose value could not be decoded (or was required and missing).
    var failed: Set<String> = []
    /// Checking a `Profile` value rather than a YAML file: every value counts as written.
    var everythingGiven = false

    static let topKeys = ["name", "extends", "machine", "accel", "cpu", "memory", "boot", "disks", "nics",
                          "hotplug", "serial", "restart", "qemu", "overcommit", "agent", "ha", "hostdevs", "cloudInit",
                          "display"]
    static let displayKeys = ["vga", "vnc"]
    static let cloudInitKeys = ["hostname", "userData", "metaData", "networkConfig", "sshKeys"]
    static let hostdevKeys = ["id", "pci", "allFunctions", "rombar", "romfile", "vf", "emulated", "failover"]
    static let vfKeys = ["pf", "netdev", "mac", "vlan", "trust", "spoofchk"]
    static let cpuKeys = ["model", "count", "max", "sockets", "cores", "threads", "pinning"]
    static let memoryKeys = ["size", "max", "slots", "balloon", "merge", "hugepages", "lock"]
    static let balloonKeys = ["min", "freePageReporting"]
    static let bootKeys = ["kernel", "initrd", "cmdline", "firmware"]
    static let diskKeys = ["id", "file", "format", "size", "bus", "cache", "readonly", "discard", "backing",
                           "backingFormat"]
    static let nicKeys = ["id", "mode", "mac", "model", "bridge", "ifname", "network", "parent", "macvtapMode", "queues",
                          "vhost"]
    static let hotplugKeys = ["slots"]
    static let qemuKeys = ["binary"]
    static let overcommitKeys = ["memoryShares", "cpuWeight", "cpuQuota"]

    // MARK: - Reporting

    mutating func report(_ location: Location, _ path: String, _ message: String) {
        diagnostics.append(Diagnostic(file: location.file.display, line: location.line, column: location.column,
                                      path: path, message: message))
    }

    mutating func fail(_ location: Location, _ path: String, _ message: String) {
        failed.insert(path)
        report(location, path, message)
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }

    // MARK: - Typed field readers

    /// Reports every key of `map` that is not in `allowed`, suggesting the nearest allowed key.
    mutating func checkKeys(_ map: TreeMap, path: String, allowed: [String]) {
        for entry in map.entries where !allowed.contains(entry.key) {
            report(entry.keyLocation, path, Self.unknownKeyMessage(entry.key, allowed: allowed))
        }
    }

    static func unknownKeyMessage(_ key: String, allowed: [String]) -> String {
        let scored = allowed.map { (key: $0, distance: EditDistance.between(key.lowercased(), $0.lowercased())) }
        if let best = scored.min(by: { $0.distance < $1.distance }),
           best.distance <= Swift.max(1, Swift.min(3, key.count / 2)) {
            return "unknown key '\(key)'; did you mean '\(best.key)'?"
        }
        return "unknown key '\(key)'; expected one of \(allowed.joined(separator: ", "))"
    }

    /// The non-null value written for `key`, remembering where it was written.
    mutating func node(_ map: TreeMap, _ key: String, _ path: String) -> TreeNode? {
        guard let value = map.value(key) else { return nil }
        locations[Self.join(path, key)] = value.location
        return value
    }

    /// Reports a missing required key at the mapping that lacks it; the diagnostic's path is the mapping's.
    mutating func require(_ map: TreeMap, _ key: String, _ path: String) {
        failed.insert(Self.join(path, key))
        report(map.location, path, "missing required key '\(key)'")
    }

    mutating func scalar(_ map: TreeMap, _ key: String, _ path: String, expected: String) -> TreeScalar? {
        guard let value = node(map, key, path) else { return nil }
        guard case .scalar(let s) = value else {
            fail(value.location, Self.join(path, key), "expected \(expected), got \(value.kindDescription)")
            return nil
        }
        return s
    }

    mutating func string(_ map: TreeMap, _ key: String, _ path: String) -> String? {
        scalar(map, key, path, expected: "a string")?.text
    }

    mutating func int(_ map: TreeMap, _ key: String, _ path: String) -> Int? {
        guard let s = scalar(map, key, path, expected: "an integer") else { return nil }
        guard let n = s.int else {
            fail(s.location, Self.join(path, key), "expected an integer, got '\(s.text)'")
            return nil
        }
        return n
    }

    mutating func bool(_ map: TreeMap, _ key: String, _ path: String) -> Bool? {
        guard let s = scalar(map, key, path, expected: "true or false") else { return nil }
        guard let b = s.bool else {
            fail(s.location, Self.join(path, key), "expected true or false, got '\(s.text)'")
            return nil
        }
        return b
    }

    mutating func size(_ map: TreeMap, _ key: String, _ path: String) -> ByteSize? {
        guard let s = scalar(map, key, path, expected: "a size (e.g. 512M, 2G)") else { return nil }
        return parseSize(s, path: Self.join(path, key))
    }

    mutating func parseSize(_ s: TreeScalar, path: String) -> ByteSize? {
        do {
            return try ByteSize(parsing: s.text)
        } catch {
            fail(s.location, path, error.description)
            return nil
        }
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(
        _ map: TreeMap, _ key: String, _ path: String, _ type: E.Type
    ) -> E? where E.RawValue == String {
        let allowed = E.allCases.map(\.rawValue).joined(separator: ", ")
        guard let s = scalar(map, key, path, expected: "one of \(allowed)") else { return nil }
        guard let value = E(rawValue: s.text) else {
            fail(s.location, Self.join(path, key), "'\(s.text)' is not one of \(allowed)")
            return nil
        }
        return value
    }

    mutating func mapping(_ node: TreeNode, _ path: String, expected: String = "a mapping") -> TreeMap? {
        guard case .map(let map) = node else {
            fail(node.location, path, "expected \(expected), got \(node.kindDescription)")
            return nil
        }
        return map
    }

    /// A file path, resolved against the folder of the file that declared it.
    mutating func filePath(_ map: TreeMap, _ key: String, _ path: String) -> String? {
        guard let s = scalar(map, key, path, expected: "a file path") else { return nil }
        guard !s.text.isEmpty else {
            fail(s.location, Self.join(path, key), "must not be empty")
            return nil
        }
        return PathText.resolve(s.text, against: s.location.file.directory)
    }

    // MARK: - Profile

    init(rootLocation: Location) {
        self.rootLocation = rootLocation
        locations[""] = rootLocation
    }

    mutating func decode(_ root: TreeNode) -> Profile {
        var profile = Profile(name: "", memory: Memory(size: .mib(1)))
        guard let map = mapping(root, "", expected: "a mapping of profile keys") else { return profile }
        checkKeys(map, path: "", allowed: Self.topKeys)

        if let name = string(map, "name", "") {
            profile.name = name
        } else if !failed.contains("name") {
            require(map, "name", "")
        }
        if let machine = string(map, "machine", "") { profile.machine = machine }
        if let accel = choice(map, "accel", "", Accel.self) { profile.accel = accel }
        if let node = node(map, "cpu", "") { profile.cpu = decodeCPU(node) }
        if let node = node(map, "memory", "") {
            if let memory = decodeMemory(node) { profile.memory = memory }
        } else {
            require(map, "memory", "")
        }
        if let node = node(map, "boot", "") { profile.boot = decodeBoot(node) }
        if let node = node(map, "disks", "") { profile.disks = decodeList(node, "disks") { $0.decodeDisk($1, $2, $3) } }
        if let node = node(map, "nics", "") { profile.nics = decodeList(node, "nics") { $0.decodeNIC($1, $2, $3) } }
        if let node = node(map, "hotplug", ""),
           let hotplug = mapping(node, "hotplug", expected: "a mapping or an integer") {
            checkKeys(hotplug, path: "hotplug", allowed: Self.hotplugKeys)
            if let slots = int(hotplug, "slots", "hotplug") { profile.hotplug.slots = slots }
        }
        if let serial = choice(map, "serial", "", SerialMode.self) { profile.serial = serial }
        if let restart = choice(map, "restart", "", RestartPolicy.self) { profile.restart = restart }
        if let node = node(map, "qemu", ""), let qemu = mapping(node, "qemu") {
            checkKeys(qemu, path: "qemu", allowed: Self.qemuKeys)
            if let binary = string(qemu, "binary", "qemu") { profile.qemu.binary = binary }
        }
        if let node = node(map, "overcommit", ""), let overcommit = mapping(node, "overcommit") {
            profile.overcommit = decodeOvercommit(overcommit)
        }
        if let agent = bool(map, "agent", "") { profile.agent = agent }
        if let ha = bool(map, "ha", "") { profile.ha = ha }
        if let node = node(map, "hostdevs", "") {
            profile.hostdevs = decodeList(node, "hostdevs") { $0.decodeHostDevice($1, $2, $3) }
        }
        if let node = node(map, "cloudInit", ""), let cloudInit = mapping(node, "cloudInit") {
            profile.cloudInit = decodeCloudInit(cloudInit)
        }
        if let node = node(map, "display", ""), let display = mapping(node, "display") {
            checkKeys(display, path: "display", allowed: Self.displayKeys)
            var value = Display()
            if let vga = choice(display, "vga", "display", VideoModel.self) { value.vga = vga }
            if let vnc = bool(display, "vnc", "display") { value.vnc = vnc }
            profile.display = value
        }
        return profile
    }

    mutating func decodeCloudInit(_ map: TreeMap) -> CloudInit {
        let path = "cloudInit"
        checkKeys(map, path: path, allowed: Self.cloudInitKeys)
        var cloudInit = CloudInit()
        cloudInit.hostname = string(map, "hostname", path)
        cloudInit.userData = cloudInitSource(map, "userData", path)
        cloudInit.metaData = cloudInitSource(map, "metaData", path)
        cloudInit.networkConfig = cloudInitSource(map, "networkConfig", path)
        if let node = node(map, "sshKeys", path) {
            let keysPath = Self.join(path, "sshKeys")
            guard case .list(let list) = node else {
                fail(node.location, keysPath, "expected a list of SSH public keys, got \(node.kindDescription)")
                return cloudInit
            }
            for (index, item) in list.items.enumerated() {
                let itemPath = "\(keysPath)[\(index)]"
                locations[itemPath] = item.location
                guard case .scalar(let key) = item else {
                    fail(item.location, itemPath, "expected an SSH public key (one line), got \(item.kindDescription)")
                    continue
                }
                cloudInit.sshKeys.append(key.text)
            }
        }
        return cloudInit
    }

    /// A cloud-init document: written here (spanning lines, or starting with `#`), or a file path resolved against
    /// the declaring file's folder.
    mutating func cloudInitSource(_ map: TreeMap, _ key: String, _ path: String) -> CloudInitSource? {
        guard let s = scalar(map, key, path, expected: "a file path, or the document itself as a block string (|)")
        else { return nil }
        switch CloudInitSource.classify(s.text) {
        case .inline:
            return .inline(s.text)
        case .path:
            guard !s.text.isEmpty else {
                fail(s.location, Self.join(path, key), "must not be empty")
                return nil
            }
            return .file(PathText.resolve(s.text, against: s.location.file.directory))
        }
    }

    mutating func decodeOvercommit(_ map: TreeMap) -> Overcommit {
        let path = "overcommit"
        checkKeys(map, path: path, allowed: Self.overcommitKeys)
        var overcommit = Overcommit()
        if let shares = int(map, "memoryShares", path) { overcommit.memoryShares = shares }
        if let weight = int(map, "cpuWeight", path) { overcommit.cpuWeight = weight }
        if let s = scalar(map, "cpuQuota", path, expected: "a percentage of one host CPU (e.g. 150%)") {
            overcommit.cpuQuotaPercent = parsePercent(s, path: Self.join(path, "cpuQuota"))
        }
        return overcommit
    }

    /// `150%`: a whole number followed by `%`. A bare number is rejected because it is ambiguous
    /// (CPUs? percent?).
    mutating func parsePercent(_ s: TreeScalar, path: String) -> Int? {
        let text = s.text.trimmingCharactersInWhitespace()
        if s.plain, let n = Int(text) {
            fail(s.location, path, "'\(text)' has no unit; write \(n)% (a percentage of one host CPU)")
            return nil
        }
        guard text.hasSuffix("%"), let n = Int(String(text.dropLast()).trimmingCharactersInWhitespace()) else {
            fail(s.location, path, "'\(s.text)' is not a percentage of one host CPU (e.g. 50%, 150%)")
            return nil
        }
        return n
    }

    /// A list of integers, each remembered under `path[i]`.
    mutating func intList(_ map: TreeMap, _ key: String, _ path: String) -> [Int]? {
        guard let value = node(map, key, path) else { return nil }
        let listPath = Self.join(path, key)
        guard case .list(let list) = value else {
            fail(value.location, listPath, "expected a list of integers, got \(value.kindDescription)")
            return nil
        }
        var numbers: [Int] = []
        var ok = true
        for (index, item) in list.items.enumerated() {
            let itemPath = "\(listPath)[\(index)]"
            locations[itemPath] = item.location
            guard case .scalar(let s) = item, let n = s.int else {
                fail(item.location, itemPath, "expected an integer, got \(item.kindDescription)")
                ok = false
                continue
            }
            numbers.append(n)
        }
        return ok ? numbers : nil
    }

    mutating func decodeCPU(_ node: TreeNode) -> CPU {
        var cpu = CPU()
        guard let map = mapping(node, "cpu", expected: "a mapping or an integer") else { return cpu }
        checkKeys(map, path: "cpu", allowed: Self.cpuKeys)
        cpu.model = string(map, "model", "cpu")
        if let count = int(map, "count", "cpu") { cpu.count = count }
        cpu.max = int(map, "max", "cpu") ?? cpu.count
        cpu.sockets = int(map, "sockets", "cpu")
        cpu.cores = int(map, "cores", "cpu")
        cpu.threads = int(map, "threads", "cpu")
        if let pinning = intList(map, "pinning", "cpu") { cpu.pinning = pinning }
        return cpu
    }

    mutating func decodeMemory(_ node: TreeNode) -> Memory? {
        if case .scalar(let s) = node {
            // Only reached when the `memory: SIZE` shorthand did not parse as a size.
            return parseSize(s, path: "memory").map { Memory(size: $0) }
        }
        guard let map = mapping(node, "memory", expected: "a mapping or a size") else { return nil }
        checkKeys(map, path: "memory", allowed: Self.memoryKeys)
        let size = self.size(map, "size", "memory")
        if size == nil && !failed.contains("memory.size") { require(map, "size", "memory") }
        var memory = Memory(size: size ?? .mib(1))
        memory.max = self.size(map, "max", "memory")
        if let slots = int(map, "slots", "memory") { memory.slots = slots }
        if let node = self.node(map, "balloon", "memory") {
            memory.balloon = decodeBalloon(node, memorySize: memory.size)
        }
        if let merge = bool(map, "merge", "memory") { memory.merge = merge }
        if let hugepages = bool(map, "hugepages", "memory") { memory.hugepages = hugepages }
        if let lock = bool(map, "lock", "memory") { memory.lock = lock }
        return memory
    }

    mutating func decodeBalloon(_ node: TreeNode, memorySize: ByteSize) -> Balloon? {
        let path = "memory.balloon"
        if case .scalar(let s) = node, s.bool == false { return nil }
        guard let map = mapping(node, path, expected: "a mapping or true/false") else { return nil }
        checkKeys(map, path: path, allowed: Self.balloonKeys)
        var balloon = Balloon()
        // Default floor for the automatic balloon policy: half the boot memory.
        balloon.min = size(map, "min", path) ?? ByteSize(bytes: memorySize.bytes / 2)
        if let reporting = bool(map, "freePageReporting", path) { balloon.freePageReporting = reporting }
        return balloon
    }

    mutating func decodeBoot(_ node: TreeNode) -> Boot {
        var boot = Boot()
        guard let map = mapping(node, "boot") else { return boot }
        checkKeys(map, path: "boot", allowed: Self.bootKeys)
        boot.kernel = filePath(map, "kernel", "boot")
        boot.initrd = filePath(map, "initrd", "boot")
        boot.cmdline = string(map, "cmdline", "boot")
        if let firmware = choice(map, "firmware", "boot", Firmware.self) { boot.firmware = firmware }
        return boot
    }

    mutating func decodeList<T>(_ node: TreeNode, _ path: String,
                                _ decodeItem: (inout ProfileChecker, TreeMap, String, Int) -> T?) -> [T] {
        guard case .list(let list) = node else {
            fail(node.location, path, "expected a list, got \(node.kindDescription)")
            return []
        }
        var items: [T] = []
        for (index, item) in list.items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            locations[itemPath] = item.location
            guard let map = mapping(item, itemPath) else { continue }
            if let value = decodeItem(&self, map, itemPath, index) { items.append(value) }
        }
        return items
    }

    mutating func decodeDisk(_ map: TreeMap, _ path: String, _ index: Int) -> Disk? {
        checkKeys(map, path: path, allowed: Self.diskKeys)
        let id = string(map, "id", path) ?? "disk\(index)"
        let file = filePath(map, "file", path)
        let size = size(map, "size", path)
        let backing = filePath(map, "backing", path)
        // Without a file, a size or a base image makes a managed volume (in the VM's folder,
        // `Profile.resolvingManagedDisks`).
        if file == nil && size == nil && backing == nil && !failed.contains(Self.join(path, "file"))
            && !failed.contains(Self.join(path, "size")) && !failed.contains(Self.join(path, "backing")) {
            report(map.location, path, "give file (an image), size (a new volume corral keeps in the VM's folder), "
                + "or both (an image created with that size)")
            failed.insert(Self.join(path, "file"))
        }
        var disk = Disk(id: id, file: file ?? "")
        disk.format = choice(map, "format", path, DiskFormat.self) ?? Self.defaultFormat(for: disk.file)
        disk.size = size
        disk.backing = backing
        disk.backingFormat = choice(map, "backingFormat", path, DiskFormat.self)
        if let bus = choice(map, "bus", path, DiskBus.self) { disk.bus = bus }
        if let cache = choice(map, "cache", path, CacheMode.self) { disk.cache = cache }
        if let readonly = bool(map, "readonly", path) { disk.readonly = readonly }
        if let discard = bool(map, "discard", path) { disk.discard = discard }
        return disk
    }

    /// `raw` for `*.raw` and `*.img` images, `qcow2` otherwise.
    static func defaultFormat(for file: String) -> DiskFormat {
        let lower = file.lowercased()
        return lower.hasSuffix(".raw") || lower.hasSuffix(".img") ? .raw : .qcow2
    }

    mutating func decodeNIC(_ map: TreeMap, _ path: String, _ index: Int) -> NIC? {
        checkKeys(map, path: path, allowed: Self.nicKeys)
        var nic = NIC(id: string(map, "id", path) ?? "net\(index)")
        if let mode = choice(map, "mode", path, NICMode.self) { nic.mode = mode }
        nic.mac = string(map, "mac", path)
        if let model = choice(map, "model", path, NICModel.self) { nic.model = model }
        nic.bridge = string(map, "bridge", path)
        nic.ifname = string(map, "ifname", path)
        nic.network = string(map, "network", path)
        // `network: NAME` alone is enough: the mode follows.
        if nic.network != nil, map["mode"] == nil { nic.mode = .network }
        nic.parent = string(map, "parent", path)
        if let mode = choice(map, "macvtapMode", path, MacvtapMode.self) { nic.macvtapMode = mode }
        nic.queues = int(map, "queues", path)
        nic.vhost = bool(map, "vhost", path)
        return nic
    }
}

extension ProfileChecker {
    mutating func decodeHostDevice(_ map: TreeMap, _ path: String, _ index: Int) -> HostDevice? {
        checkKeys(map, path: path, allowed: Self.hostdevKeys)
        var device = HostDevice(id: string(map, "id", path) ?? "hostdev\(index)")
        device.pci = pciAddress(map, "pci", path)
        if let all = bool(map, "allFunctions", path) { device.allFunctions = all }
        device.rombar = bool(map, "rombar", path)
        device.romfile = filePath(map, "romfile", path)
        if let node = node(map, "vf", path), let vf = mapping(node, Self.join(path, "vf")) {
            let vfPath = Self.join(path, "vf")
            checkKeys(vf, path: vfPath, allowed: Self.vfKeys)
            device.vf = VirtualFunction(pf: pciAddress(vf, "pf", vfPath), netdev: string(vf, "netdev", vfPath),
                                        mac: string(vf, "mac", vfPath), vlan: int(vf, "vlan", vfPath),
                                        trust: bool(vf, "trust", vfPath), spoofchk: bool(vf, "spoofchk", vfPath))
        }
        device.emulated = choice(map, "emulated", path, EmulatedPrimary.self)
        device.failover = string(map, "failover", path)
        return device
    }

    /// A PCI address (`0000:65:00.0`).
    mutating func pciAddress(_ map: TreeMap, _ key: String, _ path: String) -> PCIAddress? {
        guard let s = scalar(map, key, path, expected: "a PCI address like 0000:65:00.0") else { return nil }
        do { return try PCIAddress(parsing: s.text) } catch {
            fail(s.location, Self.join(path, key), error.description)
            return nil
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
enum EditDistance {
    static func between(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
