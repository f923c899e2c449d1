import CorralModel

/// Writes a `Profile` as YAML that `ProfileLoader` reads back to an equal profile (`corral import` writes its
/// results with it).
///
/// Values equal to the loader's defaults are left out (`accel: auto`, `cache: none`, `merge: true`…), except the
/// ones a reader wants to see (machine, cpu count, disk format and bus, NIC mode and model). Strings are written
/// plain only when YAML cannot read them as anything else; otherwise double-quoted with escapes, so `yes`, `null`,
/// `0x1f`, `52:54:00:…`, `*alias`, `a: b` and `# x` stay strings. cloud-init documents are written as literal
/// blocks (`|`) when that keeps them exact.
///
/// Two values do not survive a write and a load unchanged, because the loader fills them in: a balloon without
/// `min` comes back with half of `memory.size`, and an inline cloud-init document on a single line that does not
/// start with `#` comes back as a file path. Profiles that came from `ProfileLoader` never have either.
public enum ProfileYAMLWriter {
    /// The YAML text, starting with `header` as `# ` comment lines (a line break inside an item starts a new
    /// comment line).
    public static func render(_ profile: Profile, header: [String] = []) -> String {
        var out = YAMLLines()
        for item in header {
            for line in commentLines(item) {
                out.lines.append(line.isEmpty ? "#" : "# " + line)
            }
        }
        out.add(0, "name", string(profile.name))
        out.add(0, "machine", string(profile.machine))
        if profile.accel != .auto { out.add(0, "accel", profile.accel.rawValue) }
        writeCPU(profile.cpu, &out)
        writeMemory(profile.memory, &out)
        if profile.boot != Boot() {
            out.open(0, "boot")
            if let kernel = profile.boot.kernel { out.add(1, "kernel", string(kernel)) }
            if let initrd = profile.boot.initrd { out.add(1, "initrd", string(initrd)) }
            if let cmdline = profile.boot.cmdline { out.add(1, "cmdline", string(cmdline)) }
            if profile.boot.firmware != .bios { out.add(1, "firmware", profile.boot.firmware.rawValue) }
        }
        if !profile.disks.isEmpty {
            out.open(0, "disks")
            for disk in profile.disks { writeDisk(disk, &out) }
        }
        if !profile.nics.isEmpty {
            out.open(0, "nics")
            for nic in profile.nics { writeNIC(nic, &out) }
        }
        if profile.hotplug.slots != 0 {
            out.open(0, "hotplug")
            out.add(1, "slots", String(profile.hotplug.slots))
        }
        if profile.serial != .log { out.add(0, "serial", profile.serial.rawValue) }
        if profile.restart != .no { out.add(0, "restart", string(profile.restart.rawValue)) }
        if profile.qemu != QEMUSettings() {
            out.open(0, "qemu")
            out.add(1, "binary", string(profile.qemu.binary))
        }
        if profile.overcommit != Overcommit() {
            let overcommit = profile.overcommit
            out.open(0, "overcommit")
            if overcommit.memoryShares != Overcommit.defaultMemoryShares {
                out.add(1, "memoryShares", String(overcommit.memoryShares))
            }
            if overcommit.cpuWeight != Overcommit.defaultCPUWeight {
                out.add(1, "cpuWeight", String(overcommit.cpuWeight))
            }
            if let quota = overcommit.cpuQuotaPercent { out.add(1, "cpuQuota", "\"\(quota)%\"") }
        }
        if profile.agent { out.add(0, "agent", "true") }
        if profile.ha { out.add(0, "ha", "true") }
        if !profile.hostdevs.isEmpty {
            out.open(0, "hostdevs")
            for device in profile.hostdevs { writeHostDevice(device, &out) }
        }
        if let cloudInit = profile.cloudInit { writeCloudInit(cloudInit, &out) }
        if let display = profile.display {
            out.open(0, "display")
            out.add(1, "vga", display.vga.rawValue)
            out.add(1, "vnc", display.vnc ? "true" : "false")
        }
        return out.lines.joined(separator: "\n") + "\n"
    }

    private static func writeCPU(_ cpu: CPU, _ out: inout YAMLLines) {
        out.open(0, "cpu")
        if let model = cpu.model { out.add(1, "model", string(model)) }
        out.add(1, "count", String(cpu.count))
        if cpu.max != cpu.count { out.add(1, "max", String(cpu.max)) }
        if let sockets = cpu.sockets { out.add(1, "sockets", String(sockets)) }
        if let cores = cpu.cores { out.add(1, "cores", String(cores)) }
        if let threads = cpu.threads { out.add(1, "threads", String(threads)) }
        if !cpu.pinning.isEmpty {
            out.add(1, "pinning", "[" + cpu.pinning.map(String.init).joined(separator: ", ") + "]")
        }
    }

    private static func writeMemory(_ memory: Memory, _ out: inout YAMLLines) {
        out.open(0, "memory")
        out.add(1, "size", memory.size.qemuText)
        if let max = memory.max { out.add(1, "max", max.qemuText) }
        if memory.slots != 0 { out.add(1, "slots", String(memory.slots)) }
        if let balloon = memory.balloon {
            if balloon.min == nil && balloon.freePageReporting {
                out.add(1, "balloon", "true")
            } else {
                out.open(1, "balloon")
                if let min = balloon.min { out.add(2, "min", min.qemuText) }
                if !balloon.freePageReporting { out.add(2, "freePageReporting", "false") }
            }
        }
        if !memory.merge { out.add(1, "merge", "false") }
        if memory.hugepages { out.add(1, "hugepages", "true") }
        if memory.lock { out.add(1, "lock", "true") }
    }

    private static func writeDisk(_ disk: Disk, _ out: inout YAMLLines) {
        out.item(1, "id", string(disk.id))
        if !disk.isManaged { out.add(2, "file", string(disk.file)) }
        out.add(2, "format", disk.format.rawValue)
        if let size = disk.size { out.add(2, "size", size.qemuText) }
        out.add(2, "bus", disk.bus.rawValue)
        if disk.cache != .none { out.add(2, "cache", disk.cache.rawValue) }
        if disk.readonly { out.add(2, "readonly", "true") }
        if disk.discard { out.add(2, "discard", "true") }
        if let backing = disk.backing { out.add(2, "backing", string(backing)) }
        if let format = disk.backingFormat { out.add(2, "backingFormat", format.rawValue) }
    }

    private static func writeNIC(_ nic: NIC, _ out: inout YAMLLines) {
        out.item(1, "id", string(nic.id))
        out.add(2, "mode", nic.mode.rawValue)
        if let mac = nic.mac { out.add(2, "mac", string(mac)) }
        out.add(2, "model", nic.model.rawValue)
        if let bridge = nic.bridge { out.add(2, "bridge", string(bridge)) }
        if let ifname = nic.ifname { out.add(2, "ifname", string(ifname)) }
        if let network = nic.network { out.add(2, "network", string(network)) }
        if let parent = nic.parent { out.add(2, "parent", string(parent)) }
        if let mode = nic.macvtapMode { out.add(2, "macvtapMode", mode.rawValue) }
        if let queues = nic.queues { out.add(2, "queues", String(queues)) }
        if let vhost = nic.vhost { out.add(2, "vhost", String(vhost)) }
    }

    private static func writeHostDevice(_ device: HostDevice, _ out: inout YAMLLines) {
        out.item(1, "id", string(device.id))
        if let pci = device.pci { out.add(2, "pci", string(pci.description)) }
        if device.allFunctions { out.add(2, "allFunctions", "true") }
        if let rombar = device.rombar { out.add(2, "rombar", String(rombar)) }
        if let romfile = device.romfile { out.add(2, "romfile", string(romfile)) }
        if let vf = device.vf {
            out.open(2, "vf")
            if let pf = vf.pf { out.add(3, "pf", string(pf.description)) }
            if let netdev = vf.netdev { out.add(3, "netdev", string(netdev)) }
            if let mac = vf.mac { out.add(3, "mac", string(mac)) }
            if let vlan = vf.vlan { out.add(3, "vlan", String(vlan)) }
            if let trust = vf.trust { out.add(3, "trust", String(trust)) }
            if let spoofchk = vf.spoofchk { out.add(3, "spoofchk", String(spoofchk)) }
        }
        if let emulated = device.emulated { out.add(2, "emulated", emulated.rawValue) }
        if let failover = device.failover { out.add(2, "failover", string(failover)) }
    }

    private static func writeCloudInit(_ cloudInit: CloudInit, _ out: inout YAMLLines) {
        out.open(0, "cloudInit")
        if let hostname = cloudInit.hostname { out.add(1, "hostname", string(hostname)) }
        for (key, source) in [("userData", cloudInit.userData), ("metaData", cloudInit.metaData),
                              ("networkConfig", cloudInit.networkConfig)] {
            switch source {
            case .inline(let text)?: out.block(1, key, text)
            case .file(let path)?: out.add(1, key, string(path))
            case nil: break
            }
        }
        if !cloudInit.sshKeys.isEmpty {
            out.open(1, "sshKeys")
            for key in cloudInit.sshKeys { out.lines.append(YAMLLines.indent(2) + "- " + string(key)) }
        }
    }

    /// A comment's text as lines YAML reads as comments: split at every line break YAML knows (LF, CR, NEL, LS,
    /// PS), and characters YAML does not allow in a file (controls, DEL, C1, BOM, non-characters) written as `\u{…}`.
    static func commentLines(_ text: String) -> [String] {
        var lines: [String] = [""]
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            defer { previous = scalar }
            switch scalar {
            case "\n":
                if previous != "\r" { lines.append("") }
            case "\r", "\u{85}", "\u{2028}", "\u{2029}":
                lines.append("")
            case "\t":
                lines[lines.count - 1].unicodeScalars.append(scalar)
            default:
                let v = scalar.value
                if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0xFEFF || v == 0xFFFE || v == 0xFFFF {
                    lines[lines.count - 1] += "\\u{" + String(v, radix: 16) + "}"
                } else {
                    lines[lines.count - 1].unicodeScalars.append(scalar)
                }
            }
        }
        return lines
    }

    // MARK: - Scalars

    /// `text` as a YAML scalar that reads back as exactly this string: plain when that is unambiguous, else
    /// double-quoted.
    public static func string(_ text: String) -> String {
        isPlainSafe(text) ? text : doubleQuoted(text)
    }

    /// Words YAML 1.1 or 1.2 resolves to something other than a string (booleans, null).
    static let reservedWords: Set<String> = ["true", "false", "yes", "no", "y", "n", "on", "off", "null", "~"]

    /// Plain only for a string that starts with a letter, `/` or `_` and holds letters, digits and `_ . / + = @ -`,
    /// with single spaces inside (never at an end, never before `#` or after `:` since neither is allowed), and is
    /// not a reserved word. Anything that could be a number, a date, an anchor, a tag or an indicator is quoted.
    static func isPlainSafe(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last,
              text.utf8.count <= 200, !reservedWords.contains(text.lowercased()) else { return false }
        func isLetter(_ s: Unicode.Scalar) -> Bool {
            (s >= "a" && s <= "z") || (s >= "A" && s <= "Z")
        }
        guard isLetter(first) || first == "/" || first == "_", last != " " else { return false }
        var previousSpace = false
        for scalar in text.unicodeScalars {
            if scalar == " " {
                if previousSpace { return false }
                previousSpace = true
                continue
            }
            previousSpace = false
            let allowed = isLetter(scalar) || (scalar >= "0" && scalar <= "9")
                || "_./+=@-".unicodeScalars.contains(scalar)
            if !allowed { return false }
        }
        return true
    }

    /// A YAML double-quoted scalar: `\` and `"` escaped, control and line-separator characters as escapes.
    public static func doubleQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\0": out += "\\0"
            case "\u{85}": out += "\\N"
            case "\u{A0}": out += "\\_"
            case "\u{2028}": out += "\\L"
            case "\u{2029}": out += "\\P"
            case "\u{FEFF}": out += "\\uFEFF"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Lines of block-style YAML, two spaces per level; `item` starts a list entry (`- key: value`).
private struct YAMLLines {
    var lines: [String] = []

    static func indent(_ level: Int) -> String { String(repeating: "  ", count: level) }

    mutating func add(_ level: Int, _ key: String, _ value: String) {
        lines.append(Self.indent(level) + key + ": " + value)
    }

    mutating func open(_ level: Int, _ key: String) {
        lines.append(Self.indent(level) + key + ":")
    }

    /// `- key: value` at `level - 1`'s indentation plus two, so the entry's other keys sit at `level + 1`.
    mutating func item(_ level: Int, _ key: String, _ value: String) {
        lines.append(Self.indent(level) + "- " + key + ": " + value)
    }

    /// A literal block (`|`, `|-`) when it reads back exactly; a double-quoted scalar otherwise.
    mutating func block(_ level: Int, _ key: String, _ text: String) {
        guard let indicator = Self.literalIndicator(text) else {
            add(level, key, ProfileYAMLWriter.doubleQuoted(text))
            return
        }
        lines.append(Self.indent(level) + key + ": " + indicator)
        var body = Substring(text)
        if body.hasSuffix("\n") { body = body.dropLast() }
        for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
            lines.append(line.isEmpty ? "" : Self.indent(level + 1) + line)
        }
    }

    /// `|` for text ending in exactly one line break, `|-` for text without one; nil when a literal block would
    /// change the text (leading spaces, blank lines holding spaces, several trailing line breaks, CR or other
    /// control characters, a line separator).
    static func literalIndicator(_ text: String) -> String? {
        guard !text.isEmpty, !text.hasPrefix(" "), !text.hasPrefix("\t"), !text.hasPrefix("\n"),
              !text.hasSuffix("\n\n") else { return nil }
        for scalar in text.unicodeScalars {
            if scalar == "\n" || scalar == "\t" { continue }
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                || scalar == "\u{2028}" || scalar == "\u{2029}" || scalar == "\u{FEFF}" { return nil }
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.isEmpty && line.allSatisfy({ $0 == " " || $0 == "\t" }) { return nil }
        }
        if text.hasSuffix(" ") || text.hasSuffix("\t") { return nil }
        return text.hasSuffix("\n") ? "|" : "|-"
    }
}
