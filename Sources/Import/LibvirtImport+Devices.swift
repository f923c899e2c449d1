import CorralModel
import Profiles

/// The devices of a domain: disks, NICs, host devices, the display and channels.
extension LibvirtMapper {
    // MARK: - Disks

    mutating func mapDisks(_ devices: SourceNode) throws(ImportError) {
        let controllers = devices.children.filter { $0.name == "controller" }
        let virtioSCSI = controllers.contains {
            $0.element.attribute("type") == "scsi" && $0.element.attribute("model") == "virtio-scsi"
        }
        for scsi in controllers where scsi.element.attribute("type") == "scsi" {
            scsi.useAll()
            let model = scsi.element.attribute("model") ?? "(libvirt's default, lsilogic)"
            map.note(scsi, scsi.summary, model == "virtio-scsi"
                ? "disks on it: bus virtio-scsi; corral gives each VM one virtio-scsi controller"
                : "not carried: corral's SCSI controller is virtio-scsi, not \(model)")
        }
        for node in devices.children("disk") {
            let device = node.attribute("device") ?? "disk"
            let type = node.attribute("type") ?? "file"
            guard device == "disk" || device == "lun" else {
                node.useAll()
                map.note(node, node.summary, device == "cdrom"
                    ? "not carried: a profile has no CD-ROM drive; attach the ISO later if the guest needs it"
                    : "not carried: corral has no \(device) drive")
                continue
            }
            guard type == "file" || type == "block" else {
                node.useAll()
                map.note(node, node.summary, "not carried: corral opens image files and block devices on the host; "
                    + "copy this \(type) disk to a file (qemu-img convert) and add it to the profile")
                continue
            }
            guard disks.count < ImportLimits.disks else {
                throw map.error(node, "more than \(ImportLimits.disks) disks; corral imports at most "
                    + "\(ImportLimits.disks)")
            }
            try mapDisk(node, type: type, device: device, virtioSCSI: virtioSCSI)
        }
    }

    mutating func mapDisk(_ node: SourceNode, type: String, device: String, virtioSCSI: Bool) throws(ImportError) {
        let index = profile.disks.count
        let profilePath = "disks[\(index)]"
        let sourceKey = type == "block" ? "dev" : "file"
        guard let sourceNode = node.child("source"), let written = sourceNode.attribute(sourceKey), !written.isEmpty
        else {
            throw map.error(node, "the disk has no <source \(sourceKey)=…>")
        }
        let file = try map.absolutePath(written, sourceNode, attribute: sourceKey)
        let target = node.child("target")
        let dev = target?.attribute("dev") ?? ""
        var id = ImportText.deviceID(dev, fallback: "disk\(index)")
        if profile.disks.contains(where: { $0.id == id }) { id = "disk\(index)" }
        var disk = Disk(id: id, file: file)
        map.origin(profilePath, node)
        if device == "lun" {
            map.note(node, attribute: "device", "device='lun'", "a plain disk: corral passes no SCSI commands through")
        }

        // Format.
        let driver = node.child("driver")
        let format = driver?.attribute("type") ?? ""
        var profileFormat: DiskFormat?
        switch format {
        case "qcow2": profileFormat = .qcow2
        case "raw": profileFormat = .raw
        case "":
            profileFormat = .raw
            map.note(node, "no <driver type>", "format: raw (what libvirt assumes)")
        default:
            profileFormat = nil
        }
        if let profileFormat {
            disk.format = profileFormat
        } else {
            disk.format = .qcow2
            disk.file = Self.convertedName(file)
            map.note(driver ?? node, "\(format) image \(ImportText.shown(file))",
                     "convert it first (corral convert \(file) \(disk.file)); the profile uses the qcow2 copy")
        }
        if let name = driver?.attribute("name"), name != "qemu" {
            map.note(driver!, attribute: "name", "driver name='\(name)'", "not carried: QEMU opens the image")
        }
        if let cache = driver?.attribute("cache") {
            if let mode = CacheMode(rawValue: cache) {
                disk.cache = mode
            } else {
                map.note(driver!, attribute: "cache", "cache='\(ImportText.shown(cache))'",
                         "cache: none (corral's default; libvirt's 'default' leaves QEMU's writeback)")
            }
        }
        if let discard = driver?.attribute("discard") { disk.discard = discard == "unmap" }

        // Bus.
        let bus = target?.attribute("bus") ?? "virtio"
        switch bus {
        case "virtio":
            disk.bus = .virtioBlk
        case "scsi":
            disk.bus = .virtioSCSI
            if !virtioSCSI, let target {
                map.note(target, attribute: "bus", "bus='scsi'", "bus: virtio-scsi; the domain's SCSI controller "
                    + "was not virtio-scsi, so the guest needs the virtio-scsi driver")
            }
        default:
            disk.bus = .nvme
            if let target, !options.compat {
                map.note(target, attribute: "bus", "bus='\(ImportText.shown(bus))'", "bus: nvme: corral has no "
                    + "\(bus) disks; Linux and Windows 8.1 or later boot from NVMe (use virtio-blk once the guest has "
                    + "virtio drivers)")
            }
        }
        if options.compat { disk.bus = .nvme }
        if node.child("readonly") != nil { disk.readonly = true }
        if node.child("shareable") != nil {
            map.note(node.child("shareable")!, "shareable", "not carried: corral locks images for one VM")
        }
        profile.disks.append(disk)
        disks.append(ImportedDisk(id: disk.id, profileIndex: index, source: file, format: format,
                                  profileFormat: profileFormat))
    }

    /// `/images/win.vmdk` → `/images/win.qcow2`.
    static func convertedName(_ file: String) -> String {
        let slash = file.lastIndex(of: "/")
        if let dot = file.lastIndex(of: "."), slash.map({ dot > $0 }) ?? true, dot != file.startIndex {
            return String(file[..<dot]) + ".qcow2"
        }
        return file + ".qcow2"
    }

    // MARK: - NICs

    mutating func mapInterfaces(_ devices: SourceNode) throws(ImportError) {
        for node in devices.children("interface") {
            let type = node.attribute("type") ?? ""
            guard ["bridge", "network", "direct", "user", "ethernet"].contains(type) else {
                node.useAll()
                map.note(node, node.summary, "not carried: corral's NICs are user, tap, bridge, macvtap and managed "
                    + "network ones; add one to the profile by hand")
                continue
            }
            guard profile.nics.count < ImportLimits.nics else {
                throw map.error(node, "more than \(ImportLimits.nics) NICs; corral imports at most \(ImportLimits.nics)")
            }
            try mapInterface(node, type: type)
        }
    }

    mutating func mapInterface(_ node: SourceNode, type: String) throws(ImportError) {
        let index = profile.nics.count
        let profilePath = "nics[\(index)]"
        var nic = NIC(id: "net\(index)")
        map.origin(profilePath, node)
        let source = node.child("source")
        switch type {
        case "bridge":
            nic.mode = .bridge
            nic.bridge = source?.attribute("bridge")
            map.origin(profilePath + ".bridge", source ?? node)
        case "network":
            nic.mode = .network
            nic.network = source?.attribute("network")
            map.origin(profilePath + ".network", source ?? node)
            if let source {
                map.note(source, attribute: "network", "libvirt network '\(ImportText.shown(nic.network ?? ""))'",
                         "mode: network on corral's managed network of that name; create it first (corral network "
                            + "create), libvirt's network definition is not imported")
            }
            if let group = source?.attribute("portgroup") {
                map.note(source!, attribute: "portgroup", "portgroup='\(ImportText.shown(group))'", "not carried")
            }
        case "direct":
            nic.mode = .macvtap
            nic.parent = source?.attribute("dev")
            map.origin(profilePath + ".parent", source ?? node)
            if let mode = source?.attribute("mode") {
                let macvtap = mode == "passthrough" ? MacvtapMode.passthrough : MacvtapMode(rawValue: mode)
                if let macvtap {
                    nic.macvtapMode = macvtap
                } else {
                    map.note(source!, attribute: "mode", "mode='\(ImportText.shown(mode))'",
                             "macvtapMode: bridge (corral's macvtap modes: bridge, vepa, private, passthrough)")
                }
            }
        case "ethernet":
            nic.mode = .tap
            if let tap = node.child("target")?.attribute("dev"), node.child("target")?.attribute("managed") == "no" {
                nic.ifname = tap
                map.origin(profilePath + ".ifname", node.child("target")!)
            }
        default:
            nic.mode = .user
        }
        if let mac = node.child("mac")?.attribute("address") {
            nic.mac = mac.lowercased()
            map.origin(profilePath + ".mac", node.child("mac")!)
        }
        let modelNode = node.child("model")
        let model = modelNode?.attribute("type")
        switch model {
        case "virtio"?, "virtio-transitional"?, "virtio-non-transitional"?:
            nic.model = .virtioNet
        case "e1000e"?:
            nic.model = .e1000e
        case let other?:
            nic.model = .e1000e
            if !options.compat {
                map.note(modelNode!, attribute: "type", "model '\(ImportText.shown(other))'",
                         "model: e1000e, the emulated NIC corral offers (virtio-net is faster once the guest has "
                            + "the driver)")
            }
        case nil:
            nic.model = .e1000e
            map.note(node, "no <model>", "model: e1000e (libvirt's default model is not virtio)")
        }
        if options.compat { nic.model = .e1000e }
        if let driver = node.child("driver") {
            let ownTap = nic.mode != .user && !(nic.mode == .tap && nic.ifname != nil)
            if nic.model == .virtioNet && ownTap {
                if let name = driver.attribute("name") { nic.vhost = name == "vhost" }
                if let queues = driver.attribute("queues") {
                    guard let n = ImportText.count(queues, limit: 1024) else {
                        throw map.error(driver, attribute: "queues", "'\(ImportText.shown(queues))' is not a queue count")
                    }
                    nic.queues = Swift.min(n, 16)
                    map.origin(profilePath + ".queues", driver)
                    if n > 16 {
                        map.note(driver, attribute: "queues", "queues='\(n)'", "queues: 16, corral's most")
                    }
                }
            } else {
                driver.useAll()
                map.note(driver, driver.summary, "not carried: vhost and queues apply to virtio-net on a tap corral "
                    + "makes")
            }
        }
        profile.nics.append(nic)
    }

    // MARK: - Host devices

    mutating func mapHostdevs(_ devices: SourceNode) throws(ImportError) {
        for node in devices.children("hostdev") {
            guard node.attribute("mode") ?? "subsystem" == "subsystem", node.attribute("type") == "pci" else {
                node.useAll()
                map.note(node, node.summary, "not carried: corral passes through PCI devices only")
                continue
            }
            guard profile.hostdevs.count < ImportLimits.hostdevs else {
                throw map.error(node, "more than \(ImportLimits.hostdevs) host devices; corral imports at most "
                    + "\(ImportLimits.hostdevs)")
            }
            guard let address = node.child("source")?.child("address") else {
                throw map.error(node, "the PCI host device has no <source><address …/>")
            }
            func part(_ key: String, _ limit: UInt64) throws(ImportError) -> UInt64 {
                guard let text = address.attribute(key) else {
                    if key == "domain" { return 0 }
                    throw map.error(address, "the address has no \(key)")
                }
                guard let value = ImportText.integer(text), value <= limit else {
                    throw map.error(address, attribute: key, "'\(ImportText.shown(text))' is not a PCI \(key) "
                        + "(0…\(String(limit, radix: 16)) hex)")
                }
                return value
            }
            let pci = PCIAddress(domain: UInt16(try part("domain", 0xFFFF)), bus: UInt8(try part("bus", 0xFF)),
                                 slot: UInt8(try part("slot", 0x1F)), function: UInt8(try part("function", 7)))
            let index = profile.hostdevs.count
            var device = HostDevice(id: "hostdev\(index)", pci: pci)
            map.origin("hostdevs[\(index)]", node)
            if let managed = node.attribute("managed"), managed != "yes" {
                map.note(node, attribute: "managed", "managed='\(managed)'",
                         "corral binds the device to vfio-pci itself and gives it back when the VM stops")
            }
            if let rom = node.child("rom") {
                if let bar = rom.attribute("bar") { device.rombar = bar == "on" }
                if let file = rom.attribute("file") { device.romfile = try map.absolutePath(file, rom, attribute: "file") }
            }
            profile.hostdevs.append(device)
        }
    }

    // MARK: - Display

    /// `<graphics type='vnc'|'spice'>` → `display.vnc` (corral serves VNC itself: QEMU listens nowhere, so the
    /// listen address, port and password are not carried); `<video><model type>` → `display.vga`.
    mutating func mapDisplay(_ devices: SourceNode) {
        let graphics = devices.children.filter { $0.name == "graphics" }
        let videos = devices.children.filter { $0.name == "video" }
        var display = Display(vga: .std, vnc: false)
        var any = false
        for node in graphics {
            let type = node.element.attribute("type") ?? ""
            guard type == "vnc" || type == "spice" else { continue }
            let summary = node.summary
            node.useAll()
            display.vnc = true
            any = true
            map.note(node, summary, type == "vnc"
                ? "display.vnc: true: QEMU listens nowhere and `corral vnc NAME` serves the screen; listen address, "
                    + "port and password are not carried (the daemon's API decides who sees it)"
                : "display.vnc: true: corral serves VNC, not SPICE (`corral vnc NAME`)")
        }
        if let video = videos.first {
            let model = video.children.first { $0.name == "model" }
            let type = model?.element.attribute("type") ?? "vga"
            let summary = model?.summary ?? video.summary
            video.useAll()
            any = true
            switch type {
            case "vga": display.vga = .std
            case "virtio": display.vga = .virtio
            case "bochs": display.vga = .bochs
            case "none": display.vga = .none
            default:
                display.vga = .std
                map.note(video, summary, "display.vga: std: corral offers std, virtio and bochs; \(type) is not one")
            }
            if ["vga", "virtio", "bochs", "none"].contains(type) {
                map.note(video, summary, "display.vga: \(display.vga.rawValue) (video memory and heads: QEMU's defaults)")
            }
        }
        guard any else { return }
        if display.vnc && display.vga == .none { display.vga = .std }
        profile.display = display
    }

    // MARK: - Channels

    mutating func mapChannels(_ devices: SourceNode) {
        for channel in devices.children.filter({ $0.name == "channel" }) {
            guard let target = channel.children.first(where: { $0.name == "target" }),
                  target.element.attribute("name") == "org.qemu.guest_agent.0" else { continue }
            channel.useAll()
            profile.agent = true
            map.note(channel, "guest agent channel", "agent: true (corral makes the channel and its socket)")
        }
    }
}
