import CorralModel
import Profiles

/// An OVF envelope (the `.ovf` file of an OVA package, VMware and VirtualBox flavours) → a corral profile, the disk
/// images it names and a note for everything the profile does not carry as it was. Pure: it opens no file.
///
/// The profile's disks point at `DISKDIR/NAME.qcow2` (`diskDirectory` joined with the href's file name, its extension
/// made `.qcow2`): the images an OVA carries are VMDK and must be converted to those paths (`qemu-img convert -O
/// qcow2`) before the VM starts. `ImportResult.disks[i]` says, for `profile.disks[i]`, which package member holds the
/// image (`source`, the href as written: check it names a member of the package, never join it onto a path), its
/// format URL and its virtual size.
///
/// Not noted, because they describe the OVF file rather than the VM: `Info` elements, the envelope's attributes
/// (`ovf:version`, `xml:lang`, `vmw:buildId`, schema locations), namespace declarations, `ovf:required`, and each
/// item's `Caption`, `Description`, `ElementName` and `InstanceID`. VirtualBox's `vbox:Machine` repeats the hardware
/// in VirtualBox's own format: its firmware type and NIC MACs are read, the rest is one note.
public enum OVFImport {
    /// Maps the first `VirtualSystem` of an envelope. Throws for XML that is not well-formed (or refused), a document
    /// that is not an OVF envelope, an envelope with several virtual systems (an appliance collection), unreadable
    /// values, references to disks or files that are not declared, more devices than `ImportLimits` allows, and a
    /// profile the validator refuses; the error names the XPath and line.
    ///
    /// - Parameter diskDirectory: where the converted images will be; "" makes the profile's disk paths relative
    ///   (the profile loader resolves them against the profile's folder).
    public static func importEnvelope(_ xml: String, options: ImportOptions = ImportOptions(),
                                      diskDirectory: String = "") throws(ImportError) -> ImportResult {
        let document: XMLDocument
        do {
            document = try XMLDocument.parse(xml)
        } catch {
            throw ImportError(error)
        }
        var mapper = OVFMapper(root: SourceNode(root: document.root, alwaysIndexed: ["VirtualHardwareSection"]),
                               options: options, diskDirectory: diskDirectory)
        return try mapper.run()
    }

    /// The DMTF CIM resource types OVF items use (`rasd:ResourceType`), for notes.
    public static func resourceTypeName(_ type: Int) -> String {
        switch type {
        case 1: return "other device"
        case 3: return "processor"
        case 4: return "memory"
        case 5: return "IDE controller"
        case 6: return "parallel SCSI controller"
        case 7: return "Fibre Channel controller"
        case 8: return "iSCSI controller"
        case 9: return "InfiniBand controller"
        case 10: return "Ethernet adapter"
        case 11: return "other network adapter"
        case 12: return "I/O slot"
        case 13: return "I/O device"
        case 14: return "floppy drive"
        case 15: return "CD drive"
        case 16: return "DVD drive"
        case 17: return "disk drive"
        case 20: return "other storage device (SATA, NVMe)"
        case 21: return "serial port"
        case 22: return "parallel port"
        case 23: return "USB controller"
        case 24: return "graphics controller"
        case 25: return "IEEE 1394 controller"
        case 26: return "partitionable unit"
        case 27: return "base partitionable unit"
        case 28: return "power"
        case 29: return "cooling capacity"
        case 30: return "Ethernet switch port"
        case 31: return "logical disk"
        case 32: return "storage volume"
        case 33: return "Ethernet connection"
        case 35: return "sound card"
        default: return "resource type \(type)"
        }
    }
}

/// DMTF programmatic units (DSP0004) as OVF writes them: `byte * 2^20`, `byte*10^9`, `bytes`, and the words
/// `KiloBytes`, `MegaBytes`, `GigaBytes` (VirtualBox), `KB`, `MB`, `GB`.
enum OVFUnits {
    static let allowed = "byte, byte * 2^N, byte * 10^N, KiloBytes, MegaBytes, GigaBytes, TeraBytes, KB, MB, GB, TB"

    /// The factor in bytes; nil when unknown or past 2^64.
    static func factor(_ text: String) -> UInt64? {
        let compact = String(text.filter { $0 != " " && $0 != "\t" && $0 != "\n" }).lowercased()
        switch compact {
        case "byte", "bytes", "b": return 1
        case "kilobytes", "kb", "kib": return 1 << 10
        case "megabytes", "mb", "mib": return 1 << 20
        case "gigabytes", "gb", "gib": return 1 << 30
        case "terabytes", "tb", "tib": return 1 << 40
        default: break
        }
        for base in [("byte*2^", UInt64(2)), ("byte*10^", UInt64(10))] where compact.hasPrefix(base.0) {
            guard let exponent = Int(compact.dropFirst(base.0.count)), exponent >= 0, exponent <= 64 else { return nil }
            var factor: UInt64 = 1
            for _ in 0..<exponent {
                let (next, overflow) = factor.multipliedReportingOverflow(by: base.1)
                if overflow { return nil }
                factor = next
            }
            return factor
        }
        return nil
    }

    static func bytes(_ value: String, unit: String) -> UInt64? {
        guard let number = ImportText.integer(value), let factor = factor(unit) else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        return overflow ? nil : product
    }
}

struct OVFMapper {
    let root: SourceNode
    let options: ImportOptions
    let diskDirectory: String
    var map = Mapping()
    var profile = Profile(name: "imported", memory: Memory(size: .mib(1)))
    var disks: [ImportedDisk] = []
    /// `References/File` by `ovf:id`: the href and the node.
    var files: [String: (href: String, node: SourceNode)] = [:]
    var referencedFiles: Set<String> = []
    /// `DiskSection/Disk` by `ovf:diskId`.
    var diskDeclarations: [String: SourceNode] = [:]

    init(root: SourceNode, options: ImportOptions, diskDirectory: String) {
        self.root = root
        self.options = options
        self.diskDirectory = diskDirectory
    }

    mutating func run() throws(ImportError) -> ImportResult {
        guard root.localName == "Envelope" else {
            throw map.error(root, "not an OVF envelope: the root element is <\(root.name)>, expected <Envelope>")
        }
        for attribute in root.element.attributes { root.usedAttributes.insert(attribute.name) }
        markDescriptive(root)
        readReferences()
        readDisks()
        if let networks = root.child(local: "NetworkSection") {
            for network in networks.children(local: "Network") {
                network.useAll()
            }
        }
        let systems = root.children(local: "VirtualSystem")
        if root.child(local: "VirtualSystemCollection") != nil {
            throw map.error(root.child(local: "VirtualSystemCollection")!, "an appliance of several virtual machines "
                + "(VirtualSystemCollection); corral imports one VM at a time")
        }
        guard let system = systems.first else {
            throw map.error(root, "the envelope has no VirtualSystem")
        }
        if systems.count > 1 {
            throw map.error(systems[1], "the envelope has \(systems.count) virtual systems; corral imports one VM")
        }
        try mapName(system)
        profile.machine = "q35"
        profile.accel = .kvm
        if let hardware = system.child(local: "VirtualHardwareSection") {
            try mapHardware(hardware)
        } else {
            throw map.error(system, "the virtual system has no VirtualHardwareSection")
        }
        if let machine = system.child(local: "Machine"), machine.element.namespace == OVFNamespaces.vbox {
            mapVirtualBoxMachine(machine)
        }
        for (id, file) in files.sorted(by: { $0.value.node.line < $1.value.node.line })
            where !referencedFiles.contains(id) {
            map.note(file.node, "file \(ImportText.shown(file.href))", "not carried: no disk of the VM uses it")
        }
        for (_, disk) in diskDeclarations.sorted(by: { $0.value.line < $1.value.line }) where !disk.used {
            disk.useAll()
            map.note(disk, disk.summary, "not carried: no item of the VM attaches this disk")
        }
        if options.compat {
            map.note(system, "compat", "disks on NVMe and NICs as e1000e, which every guest OS drives without virtio "
                + "drivers; switch to virtio-blk and virtio-net once the guest has them")
        }
        try map.validate(profile, root: root)
        let notes = map.sortedNotes(adding: root.unreadNotes(explain: Self.explain))
        return ImportResult(profile: profile, disks: disks, notes: notes)
    }

    /// `Info` elements and `ovf:required` say things about the OVF file, not the VM (see `OVFImport`).
    func markDescriptive(_ node: SourceNode) {
        for child in node.children {
            if child.localName == "Info" { child.useAll() }
            if child.element.attributes.contains(where: { $0.localName == "required" }) {
                for attribute in child.element.attributes where attribute.localName == "required" {
                    child.usedAttributes.insert(attribute.name)
                }
            }
            markDescriptive(child)
        }
    }

    // MARK: - References and disks

    mutating func readReferences() {
        guard let references = root.child(local: "References") else { return }
        for file in references.children(local: "File") {
            guard let id = file.attribute(local: "id"), let href = file.attribute(local: "href") else {
                map.note(file, file.summary, "not carried: a File without ovf:id or ovf:href")
                continue
            }
            _ = file.attribute(local: "size")
            files[id] = (href, file)
        }
    }

    mutating func readDisks() {
        guard let section = root.child(local: "DiskSection") else { return }
        for disk in section.children(local: "Disk") {
            // Used once an item attaches it; the rest are noted at the end.
            disk.used = false
            guard let id = disk.element.attributes.first(where: { $0.localName == "diskId" })?.value else { continue }
            diskDeclarations[id] = disk
        }
        section.used = true
    }

    // MARK: - Virtual system

    mutating func mapName(_ system: SourceNode) throws(ImportError) {
        let id = system.attribute(local: "id") ?? ""
        let nameNode = system.child(local: "Name")
        let written = nameNode?.text ?? id
        let at = nameNode ?? system
        if let name = options.name {
            profile.name = name
            map.note(at, "name '\(ImportText.shown(written))'", "named '\(name)' as asked")
            return
        }
        guard let name = ImportText.vmName(written) else {
            throw map.error(at, "'\(ImportText.shown(written))' has nothing to make a VM name of (\(VMName.rule)); "
                + "give one with --name")
        }
        profile.name = name
        map.origin("name", at)
        if name != written {
            let what = "name '\(ImportText.shown(written))'", action = "named '\(name)' (\(VMName.rule))"
            if let nameNode {
                map.note(nameNode, what, action)
            } else if let idAttribute = system.element.attributes.first(where: { $0.localName == "id" }) {
                map.note(system, attribute: idAttribute.name, what, action)
            }
        }
    }

    /// An item's `rasd:X` child text (any prefix), marking it read.
    func value(_ item: SourceNode, _ local: String) -> String? {
        item.child(local: local)?.text
    }

    mutating func mapHardware(_ hardware: SourceNode) throws(ImportError) {
        if let system = hardware.child(local: "System") {
            system.useAll()
        }
        // Controllers by InstanceID, for the disks' notes.
        var controllers: [String: (type: Int, subtype: String)] = [:]
        let items = hardware.children(local: "Item")
        for item in items {
            for descriptive in ["Caption", "Description", "ElementName", "InstanceID"] {
                item.child(local: descriptive)?.useAll()
            }
            guard let typeText = item.peek(local: "ResourceType")?.element.trimmedText, let type = Int(typeText)
            else { continue }
            if [5, 6, 20].contains(type), let id = item.peek(local: "InstanceID") {
                controllers[id.element.trimmedText] = (type, item.peek(local: "ResourceSubType")?.element.trimmedText ?? "")
            }
        }
        for item in items {
            guard let typeNode = item.child(local: "ResourceType") else {
                throw map.error(item, "the item has no rasd:ResourceType")
            }
            guard let type = Int(typeNode.text) else {
                throw map.error(typeNode, "'\(ImportText.shown(typeNode.text))' is not a resource type number")
            }
            let label = OVFImport.resourceTypeName(type)
                + (value(item, "ElementName").map { " '\(ImportText.shown($0))'" } ?? "")
            switch type {
            case 3: try mapCPU(item)
            case 4: try mapMemory(item)
            case 5, 6, 20:
                item.useAll()
                let subtype = item.peek(local: "ResourceSubType")?.element.trimmedText ?? ""
                map.note(item, label + (subtype.isEmpty ? "" : " (\(ImportText.shown(subtype)))"),
                    "not carried: corral lays out its own controllers; the disks on it are on "
                        + (options.compat ? "NVMe" : "virtio-blk"))
            case 17: try mapDisk(item, controllers: controllers)
            case 10: try mapNIC(item)
            default:
                item.useAll()
                map.note(item, label, Self.itemReason(type))
            }
        }
        for config in hardware.children where config.localName == "Config"
            && config.element.namespace == OVFNamespaces.vmware {
            config.used = true
            let key = config.attribute(local: "key") ?? ""
            let value = config.attribute(local: "value") ?? ""
            if key == "firmware" {
                switch value.lowercased() {
                case "efi": profile.boot.firmware = .uefi
                case "bios": profile.boot.firmware = .bios
                default:
                    map.note(config, "firmware '\(ImportText.shown(value))'", "firmware: bios")
                }
                map.origin("boot.firmware", config)
            } else {
                map.note(config, "VMware setting \(ImportText.shown(key)) = \(ImportText.shown(value))",
                         "not carried: a VMware setting")
            }
        }
    }

    mutating func mapCPU(_ item: SourceNode) throws(ImportError) {
        guard let text = value(item, "VirtualQuantity"), let count = ImportText.count(text, limit: 4096), count >= 1 else {
            throw map.error(item, "the processor item has no VirtualQuantity (a vCPU count)")
        }
        profile.cpu.count = count
        profile.cpu.max = count
        map.origin("cpu", item)
        map.origin("cpu.count", item)
        if let units = item.child(local: "AllocationUnits") { units.useAll() }
        if let coresNode = item.child(local: "CoresPerSocket") {
            if let cores = ImportText.count(coresNode.text, limit: 4096), cores >= 1, count % cores == 0 {
                profile.cpu.sockets = count / cores
                profile.cpu.cores = cores
                profile.cpu.threads = 1
                map.origin("cpu.sockets", coresNode)
            } else {
                map.note(coresNode, "\(ImportText.shown(coresNode.text)) cores per socket",
                         "not carried: does not divide the \(count) vCPUs")
            }
        }
        for key in ["Reservation", "Limit", "Weight"] {
            if let node = item.child(local: key) {
                map.note(node, "CPU \(key.lowercased()) \(ImportText.shown(node.text))",
                         "not carried: set overcommit.cpuWeight or overcommit.cpuQuota by hand")
            }
        }
    }

    mutating func mapMemory(_ item: SourceNode) throws(ImportError) {
        guard let text = value(item, "VirtualQuantity") else {
            throw map.error(item, "the memory item has no VirtualQuantity")
        }
        let unitNode = item.child(local: "AllocationUnits")
        let unit = unitNode?.text ?? "byte * 2^20"
        guard OVFUnits.factor(unit) != nil else {
            throw map.error(unitNode ?? item, "unit '\(ImportText.shown(unit))' is not one of \(OVFUnits.allowed)")
        }
        guard let bytes = OVFUnits.bytes(text, unit: unit), bytes > 0 else {
            throw map.error(item.child(local: "VirtualQuantity") ?? item,
                            "'\(ImportText.shown(text))' \(unit) is not a memory size")
        }
        profile.memory.size = ByteSize(bytes: bytes)
        map.origin("memory", item)
        map.origin("memory.size", item)
        if unitNode == nil {
            map.note(item, "memory without AllocationUnits", "read as MiB (byte * 2^20)")
        }
        for key in ["Reservation", "Limit", "Weight"] {
            if let node = item.child(local: key) {
                map.note(node, "memory \(key.lowercased()) \(ImportText.shown(node.text))",
                         "not carried: the balloon policy shares memory (overcommit.memoryShares)")
            }
        }
    }

    mutating func mapDisk(_ item: SourceNode, controllers: [String: (type: Int, subtype: String)]) throws(ImportError) {
        guard let resourceNode = item.child(local: "HostResource") else {
            throw map.error(item, "the disk item has no HostResource (ovf:/disk/ID)")
        }
        let resource = resourceNode.text
        guard disks.count < ImportLimits.disks else {
            throw map.error(item, "more than \(ImportLimits.disks) disks; corral imports at most \(ImportLimits.disks)")
        }
        let index = profile.disks.count
        var capacity: ByteSize?
        var populated: UInt64?
        var format = ""
        let fileID: String
        if let diskID = Self.suffix(resource, after: ["ovf:/disk/", "/disk/"]) {
            guard let declaration = diskDeclarations[diskID] else {
                throw map.error(resourceNode, "disk '\(ImportText.shown(diskID))' is not declared in the DiskSection")
            }
            declaration.used = true
            guard let ref = declaration.attribute(local: "fileRef") else {
                throw map.error(declaration, "disk '\(ImportText.shown(diskID))' has no ovf:fileRef (an empty disk); "
                    + "corral imports disks with an image")
            }
            fileID = ref
            _ = declaration.attribute(local: "diskId")
            format = declaration.attribute(local: "format") ?? ""
            if let capacityText = declaration.attribute(local: "capacity") {
                let unit = declaration.attribute(local: "capacityAllocationUnits") ?? "byte"
                guard let bytes = OVFUnits.bytes(capacityText, unit: unit) else {
                    throw map.error(declaration, attribute: "ovf:capacity", "'\(ImportText.shown(capacityText))' × "
                        + "'\(ImportText.shown(unit))' is not a size (units: \(OVFUnits.allowed))")
                }
                capacity = ByteSize(bytes: bytes)
            }
            if let populatedText = declaration.attribute(local: "populatedSize") {
                populated = ImportText.integer(populatedText)
            }
        } else if let id = Self.suffix(resource, after: ["ovf:/file/", "/file/"]) {
            fileID = id
        } else {
            throw map.error(resourceNode, "'\(ImportText.shown(resource))' is not ovf:/disk/ID or ovf:/file/ID")
        }
        guard let file = files[fileID] else {
            throw map.error(resourceNode, "file '\(ImportText.shown(fileID))' is not in the References")
        }
        referencedFiles.insert(fileID)
        let lower = format.lowercased()
        let profileFormat: DiskFormat? = lower.contains("qcow") ? .qcow2 : lower.hasSuffix("#raw") ? .raw : nil
        var fileName = Self.imageName(file.href, index: index, format: profileFormat)
        if profile.disks.contains(where: { $0.file.hasSuffix("/" + fileName) || $0.file == fileName }) {
            // Two disks from one image, or two images with one stem: each gets its own converted file.
            fileName = "disk\(index)-" + fileName
        }
        let joined = (diskDirectory.hasSuffix("/") ? diskDirectory : diskDirectory + "/") + fileName
        let path = diskDirectory.isEmpty ? fileName
            : diskDirectory.hasPrefix("/") ? ProfileLoader.normalizedPath(joined) : joined
        var disk = Disk(id: "disk\(index)", file: path, format: profileFormat ?? .qcow2)
        disk.bus = options.compat ? .nvme : .virtioBlk
        map.origin("disks[\(index)]", item)
        if let parent = item.child(local: "Parent")?.text, let controller = controllers[parent], !options.compat {
            map.note(item, "disk on \(OVFImport.resourceTypeName(controller.type)) \(ImportText.shown(parent))"
                + (controller.subtype.isEmpty ? "" : " (\(ImportText.shown(controller.subtype)))"),
                "bus: virtio-blk: the guest needs the virtio-blk driver (Linux has it; Windows needs virtio-win), "
                    + "else import with --compat (NVMe)")
        }
        if profileFormat == nil {
            map.note(resourceNode, "image \(ImportText.shown(file.href))"
                + (format.isEmpty ? "" : " (\(ImportText.shown(Self.formatName(format))))"),
                "convert it to \(path) (qcow2) before the VM starts")
        }
        profile.disks.append(disk)
        disks.append(ImportedDisk(id: disk.id, profileIndex: index, source: file.href, format: format,
                                  profileFormat: profileFormat, capacity: capacity, populatedSize: populated))
    }

    /// `http://www.vmware.com/…/vmdk.html#streamOptimized` → `vmdk streamOptimized`.
    static func formatName(_ url: String) -> String {
        let last = url.split(separator: "/").last.map(String.init) ?? url
        let parts = last.split(separator: "#", maxSplits: 1).map(String.init)
        let base = parts[0].split(separator: ".").first.map(String.init) ?? parts[0]
        return parts.count > 1 ? base + " " + parts[1] : base
    }

    static func suffix(_ text: String, after prefixes: [String]) -> String? {
        for prefix in prefixes where text.hasPrefix(prefix) {
            let rest = String(text.dropFirst(prefix.count))
            return rest.isEmpty ? nil : rest
        }
        return nil
    }

    /// The file name of an href (no folders, only safe characters), its extension made `.qcow2` (`.raw`).
    static func imageName(_ href: String, index: Int, format: DiskFormat?) -> String {
        let last = href.split(separator: "/").last.map(String.init) ?? ""
        var stem = last
        if let dot = last.lastIndex(of: "."), dot != last.startIndex { stem = String(last[..<dot]) }
        let safe = String(stem.unicodeScalars.filter {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
                || $0 == "-" || $0 == "_" || $0 == "."
        }.map(Character.init)).prefix(100)
        let name = safe.isEmpty || safe.hasPrefix(".") ? "disk\(index)" : String(safe)
        return name + (format == .raw ? ".raw" : ".qcow2")
    }

    mutating func mapNIC(_ item: SourceNode) throws(ImportError) {
        guard profile.nics.count < ImportLimits.nics else {
            throw map.error(item, "more than \(ImportLimits.nics) NICs; corral imports at most \(ImportLimits.nics)")
        }
        let index = profile.nics.count
        var nic = NIC(id: "net\(index)", mode: .user)
        map.origin("nics[\(index)]", item)
        let subtypeNode = item.child(local: "ResourceSubType")
        let subtype = subtypeNode?.text ?? ""
        switch subtype.lowercased() {
        case "virtio", "virtio-net":
            nic.model = .virtioNet
        case "e1000e":
            nic.model = .e1000e
        case "vmxnet3", "vmxnet2", "vmxnet":
            nic.model = .virtioNet
            if !options.compat, let subtypeNode {
                map.note(subtypeNode, "\(ImportText.shown(subtype)) NIC", "model: virtio-net (VMware's paravirtual "
                    + "NIC has no QEMU equivalent): the guest needs the virtio-net driver, else import with --compat "
                    + "(e1000e)")
            }
        default:
            nic.model = .e1000e
            if !options.compat {
                map.note(subtypeNode ?? item, subtype.isEmpty ? "NIC without a ResourceSubType"
                    : "\(ImportText.shown(subtype)) NIC", "model: e1000e, the emulated NIC corral offers")
            }
        }
        if options.compat { nic.model = .e1000e }
        if let connection = item.child(local: "Connection") {
            map.note(connection, "on network '\(ImportText.shown(connection.text))'", "mode: user (NAT); put the "
                + "NIC on a bridge or a corral network (corral network create) in the profile")
        }
        if let address = item.peek(local: "Address"), let mac = MACAddress.normalized(address.element.trimmedText) {
            address.used = true
            nic.mac = mac
            map.origin("nics[\(index)].mac", address)
        }
        profile.nics.append(nic)
    }

    // MARK: - VirtualBox

    /// VirtualBox's own copy of the machine: the firmware type and the NICs' MACs are read, the rest is one note.
    mutating func mapVirtualBoxMachine(_ machine: SourceNode) {
        let hardware = machine.children.first { $0.localName == "Hardware" }
        if let firmware = hardware?.children.first(where: { $0.localName == "Firmware" })?.element.attribute("type") {
            if firmware.uppercased().hasPrefix("EFI") {
                profile.boot.firmware = .uefi
                map.origin("boot.firmware", machine)
            }
        }
        let adapters = hardware?.children.first { $0.localName == "Network" }?.children.filter {
            $0.localName == "Adapter" && $0.element.attribute("enabled") != "false"
        } ?? []
        for (index, adapter) in adapters.enumerated() where index < profile.nics.count && profile.nics[index].mac == nil {
            guard let raw = adapter.element.attribute("MACAddress"), raw.count == 12 else { continue }
            var text = ""
            for (offset, c) in raw.enumerated() {
                if offset > 0 && offset % 2 == 0 { text += ":" }
                text.append(c)
            }
            if let mac = MACAddress.normalized(text) {
                profile.nics[index].mac = mac
                map.origin("nics[\(index)].mac", adapter)
            }
        }
        machine.useAll()
        map.note(machine, "VirtualBox machine settings", "only the firmware type (boot.firmware: "
            + "\(profile.boot.firmware.rawValue)) and the NICs' MACs are read; the OVF items above are the source of "
            + "everything else")
    }

    // MARK: - What is not carried

    static func itemReason(_ type: Int) -> String {
        switch type {
        case 14, 15, 16: return "not carried: a profile has no removable drives; attach an ISO later if needed"
        case 21, 22: return "not carried: corral gives every VM one serial port, logged to a file (serial: log)"
        case 23: return "not carried: corral gives no USB controller"
        case 24: return "not carried: corral VMs have no display; the serial console is logged (corral console)"
        case 35: return "not carried: corral gives no sound device"
        default: return "not carried: corral has no equivalent; ignored"
        }
    }

    static func explain(_ pattern: String) -> String {
        let last = pattern.split(separator: "/").last.map(String.init) ?? pattern
        switch last {
        case "OperatingSystemSection": return "not needed: corral does not tune for the guest OS type"
        case "AnnotationSection", "Annotation": return "not carried: write it as a comment in the profile"
        case "ProductSection": return "not carried: product properties (OVF environment) are not passed to the guest"
        case "EulaSection": return "not carried: read the licence before you import"
        case "StartupSection": return "not carried: corral starts VMs one by one"
        case "rasd:AutomaticAllocation", "AutomaticAllocation": return "not carried: devices are connected at boot"
        case "rasd:AddressOnParent", "AddressOnParent", "rasd:Parent", "Parent", "rasd:Address", "Address":
            return "not kept: corral places devices itself"
        case "vmw:Config", "Config": return "not carried: a VMware setting"
        case "@vbox:uuid": return "not needed: VirtualBox's id of the disk"
        default: return "not carried: corral has no equivalent; ignored"
        }
    }
}

enum OVFNamespaces {
    static let vmware = "http://www.vmware.com/schema/ovf"
    static let vbox = "http://www.virtualbox.org/ovf/machine"
}
