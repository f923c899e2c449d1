import CorralModel
import Testing

/// Each request's `validate()`: a valid request passes; one broken field gives exactly one message naming the flag
/// and what it allows; several broken fields are all reported, in a fixed order.
@Suite struct RequestValidationTests {
    func problems(_ validate: () throws(RequestProblems) -> Void) -> [String] {
        do { try validate() } catch { return error.messages }
        return []
    }

    static let nameRule = "lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters"
    static let idRule = "a letter, then up to 31 letters, digits, '_' or '-'"

    // MARK: up

    @Test func upRequest() {
        let valid = UpRequest(profile: "/srv/web.yaml", name: "web-1")
        #expect(problems(valid.validate).isEmpty)
        #expect(problems(UpRequest(profile: "/srv/web.yaml").validate).isEmpty, "no --name: the profile's")

        var broken = valid
        broken.name = "Web_1"
        #expect(problems(broken.validate) == ["--name: 'Web_1' is not a valid VM name (\(Self.nameRule))"])
        broken.name = String(repeating: "a", count: 64)
        #expect(problems(broken.validate) == ["--name: '\(broken.name!)' is not a valid VM name (\(Self.nameRule))"])
        broken.name = ""
        #expect(problems(broken.validate) == ["--name: '' is not a valid VM name (\(Self.nameRule))"])

        broken = valid
        broken.profile = "web.yaml"
        #expect(problems(broken.validate) == ["PROFILE: 'web.yaml' must be an absolute path on the daemon's host"])
    }

    // MARK: disk add

    @Test func diskAddRequestWithoutAFileIsAManagedVolume() {
        #expect(problems(DiskAddRequest(id: "scratch", file: nil, size: "1G").validate).isEmpty)
        #expect(problems(DiskAddRequest(id: "scratch", file: nil).validate)
            == ["give --file (an image), --size (a new volume corral keeps in the VM's folder), --backing (a new "
                + "overlay on a base image), or --file with one of them"])
    }

    @Test func diskAddRequestWithABaseImage() {
        #expect(problems(DiskAddRequest(id: "clone", file: nil, backing: "/images/base.qcow2").validate).isEmpty)
        #expect(problems(DiskAddRequest(id: "clone", file: nil, format: .raw, readonly: true,
                                        backing: "base.qcow2").validate) == [
            "--backing: 'base.qcow2' must be an absolute path (on the daemon's host)",
            "--backing makes a qcow2 overlay: --format raw cannot have one",
            "--readonly with --backing would create an overlay nothing can write",
        ])
    }

    // MARK: hostdev add

    @Test func hostDeviceAddRequest() {
        #expect(problems(HostDeviceAddRequest(id: "gpu", pci: "0000:65:00.0").validate).isEmpty)
        #expect(problems(HostDeviceAddRequest(id: "vf", vfOf: "enp101s0f0", mac: "52:54:00:00:00:01", vlan: 4094).validate).isEmpty)
        #expect(problems(HostDeviceAddRequest(id: "vf", vfOf: "0000:65:00.0").validate).isEmpty)
        let oneOf = "give one of --pci ADDRESS (a host device) or --vf-of PF (a VF of that PF, by address or interface)"
        #expect(problems(HostDeviceAddRequest(id: "x").validate) == [oneOf])
        #expect(problems(HostDeviceAddRequest(id: "x", pci: "0000:65:00.0", vfOf: "eth0").validate) == [oneOf])
        #expect(problems(HostDeviceAddRequest(id: "x", pci: "65:00").validate)
            == ["--pci: '65:00' is not a PCI address like 0000:65:00.0"])
        #expect(problems(HostDeviceAddRequest(id: "x", vfOf: "not an interface!").validate)
            == ["--vf-of: 'not an interface!' is neither a PCI address like 0000:65:00.0 nor an interface name "
                + "(\(InterfaceName.rule))"])
        #expect(problems(HostDeviceAddRequest(id: "x", pci: "0000:65:00.0", vlan: 3).validate)
            == ["--mac and --vlan go with --vf-of, not --pci"])
        #expect(problems(HostDeviceAddRequest(id: "1x", vfOf: "eth0", mac: "01:00:5e:00:00:01", vlan: 0).validate) == [
            "--id: '1x' is not a valid device id (\(Self.idRule))",
            "--mac: '01:00:5e:00:00:01' is a multicast address; the first octet must be even",
            "--vlan: 0 is outside 1…4094",
        ])
    }

    // MARK: migrate

    @Test func migrateRequest() {
        let valid = MigrateRequest(to: "[2001:db8::2]:7070", token: "t", options: MigrationOptions(multifdChannels: 4))
        #expect(problems(valid.validate).isEmpty)

        var broken = valid
        broken.to = "[2001:db8::2]:0"
        #expect(problems(broken.validate)
            == ["--to: port 0 cannot be connected to: give the destination daemon's port (1…65535)"])

        broken = valid
        broken.options.multifdChannels = 65
        #expect(problems(broken.validate) == ["--multifd must be between 1 and 64 channels (got 65)"])

        broken.to = "192.0.2.2:0"
        broken.options.postcopy = true
        #expect(problems(broken.validate) == [
            "--to: port 0 cannot be connected to: give the destination daemon's port (1…65535)",
            "--multifd must be between 1 and 64 channels (got 65)",
            "--postcopy cannot be combined with --multifd on QEMU 7.2: the destination QEMU aborts "
                + "(yank_unregister_instance assertion) when such a migration completes, and the guest is lost",
        ])
    }

    // MARK: set (tuning)

    @Test func tuningRequest() {
        let valid = TuningRequest(cpuWeight: 200, cpuQuotaPercent: 150, balloonMin: "256M", memoryShares: 10)
        #expect(problems(valid.validate).isEmpty)
        #expect(problems(TuningRequest(cpuQuotaPercent: 0).validate).isEmpty, "0 removes the quota")
        #expect(problems(TuningRequest(autoBalloon: false).validate).isEmpty)
        #expect(problems(TuningRequest(cpuWeight: 1).validate).isEmpty)
        #expect(problems(TuningRequest(cpuWeight: 10_000).validate).isEmpty)

        #expect(problems(TuningRequest().validate)
            == ["give at least one of --cpu-weight, --cpu-quota, --balloon-min, --memory-shares, --auto-balloon"])
        for weight in [0, 10_001, -5] {
            var broken = valid
            broken.cpuWeight = weight
            #expect(problems(broken.validate) == ["--cpu-weight: \(weight) is outside 1…10000"])
        }
        var broken = valid
        broken.cpuQuotaPercent = 25_501
        #expect(problems(broken.validate) == ["--cpu-quota: 25501% is outside 1…25500% (none removes the quota)"])
        broken = valid
        broken.memoryShares = 0
        #expect(problems(broken.validate) == ["--memory-shares: 0 is less than 1"])
        broken = valid
        broken.balloonMin = "lots"
        #expect(problems(broken.validate) == ["--balloon-min: 'lots' is not a size (e.g. 512M, 2G)"])

        broken = TuningRequest(cpuWeight: 0, memoryShares: 0)
        #expect(problems(broken.validate) == ["--cpu-weight: 0 is outside 1…10000", "--memory-shares: 0 is less than 1"])
    }

    /// The profile's `overcommit.cpuWeight` and `corral set --cpu-weight` share one range.
    @Test func cpuWeightRangeIsOneConstant() {
        #expect(OvercommitLimits.cpuWeight == 1...10_000)
        #expect(OvercommitLimits.cpuQuotaPercent == 1...25_500)
    }

    // MARK: hotplug

    @Test func diskAddRequest() {
        let valid = DiskAddRequest(id: "d1", file: "/srv/d1.qcow2", size: "16M")
        #expect(problems(valid.validate).isEmpty)
        #expect(problems(DiskAddRequest(id: "d1", file: "/srv/d1.qcow2", readonly: true).validate).isEmpty)

        var broken = valid
        broken.id = "1d"
        #expect(problems(broken.validate) == ["--id: '1d' is not a valid device id (\(Self.idRule))"])
        broken = valid
        broken.file = "d1.qcow2"
        #expect(problems(broken.validate) == ["--file: 'd1.qcow2' must be an absolute path (on the daemon's host)"])
        broken = valid
        broken.size = "16Q"
        #expect(problems(broken.validate)
            == ["--size: '16Q' has an unknown unit; use K, M, G, T (or KiB, MiB, GiB, TiB)"])
        broken = valid
        broken.readonly = true
        #expect(problems(broken.validate) == ["--readonly with --size would create an empty read-only disk"])

        broken = DiskAddRequest(id: "", file: "x")
        #expect(problems(broken.validate) == [
            "--id: '' is not a valid device id (\(Self.idRule))",
            "--file: 'x' must be an absolute path (on the daemon's host)",
        ])
    }

    @Test func nicAddRequest() {
        let valid = NICAddRequest(id: "n1", mode: .bridge, bridge: "br0", mac: "52:54:00:AB:cd:01", model: .e1000e)
        #expect(problems(valid.validate).isEmpty)
        #expect(problems(NICAddRequest(id: "n1").validate).isEmpty, "user networking by default")
        #expect(problems(NICAddRequest(id: "n1", mode: .tap, ifname: "tap0").validate).isEmpty)

        var broken = valid
        broken.id = "n 1"
        #expect(problems(broken.validate) == ["--id: 'n 1' is not a valid device id (\(Self.idRule))"])
        broken = valid
        broken.bridge = nil
        #expect(problems(broken.validate) == ["--mode bridge needs --bridge BRIDGE"])
        broken = valid
        broken.mode = .user
        #expect(problems(broken.validate) == ["--bridge needs --mode bridge"])
        broken = valid
        broken.bridge = "br/0"
        #expect(problems(broken.validate)
            == ["--bridge: 'br/0' is not a valid interface name (1-15 characters, no '/', ':', ',' or whitespace)"])
        broken = valid
        broken.mac = "52:54:zz:00:00:01"
        #expect(problems(broken.validate) == ["--mac: '52:54:zz:00:00:01' is not a MAC address like 52:54:00:12:34:56"])
        broken = valid
        broken.mac = "01:00:5e:00:00:01"
        #expect(problems(broken.validate)
            == ["--mac: '01:00:5e:00:00:01' is a multicast address; the first octet must be even"])

        broken = NICAddRequest(id: "n1", mode: .tap, bridge: "br0")
        #expect(problems(broken.validate) == ["--bridge needs --mode bridge"])
        broken = NICAddRequest(id: "n1", mode: .macvtap, macvtapMode: .vepa)
        #expect(problems(broken.validate) == ["--mode macvtap needs --parent INTERFACE"])
        broken = NICAddRequest(id: "n1", mode: .bridge, bridge: "br0", parent: "eth0")
        #expect(problems(broken.validate) == ["--parent needs --mode macvtap"])
    }

    @Test func cpuCountAndBalloonRequests() {
        #expect(problems(CPUCountRequest(count: 2).validate) == [])
        #expect(problems(CPUCountRequest(count: 0).validate) == ["COUNT must be at least 1, got 0"])
        #expect(problems(BalloonRequest(size: "384M").validate) == [])
        #expect(problems(BalloonRequest(size: "lots").validate).first?.hasPrefix("SIZE: ") == true)
    }

    @Test func memoryAddRequest() {
        let valid = MemoryAddRequest(id: "dimm1", size: "256M")
        #expect(problems(valid.validate).isEmpty)
        #expect(problems(MemoryAddRequest(size: "1G").validate).isEmpty, "no id: the daemon names it")

        var broken = valid
        broken.size = "100M"
        #expect(problems(broken.validate)
            == ["--add: 100M is not a multiple of 128M (the guest's memory block size)"])
        broken.size = "lots"
        #expect(problems(broken.validate) == ["--add: 'lots' is not a size (e.g. 512M, 2G)"])
        broken = valid
        broken.id = "1"
        #expect(problems(broken.validate) == ["--id: '1' is not a valid device id (\(Self.idRule))"])
    }

    // MARK: names

    @Test func namesAreDefinedOnce() {
        #expect(VMName.isValid("web-1") && VMName.isValid("0") && VMName.isValid(String(repeating: "a", count: 63)))
        #expect(!VMName.isValid("") && !VMName.isValid("-web") && !VMName.isValid("Web")
            && !VMName.isValid("wéb") && !VMName.isValid(String(repeating: "a", count: 64)))
        #expect(DeviceID.isValid("d_1-x") && DeviceID.isValid("A" + String(repeating: "b", count: 31)))
        #expect(!DeviceID.isValid("1d") && !DeviceID.isValid("") && !DeviceID.isValid("A" + String(repeating: "b", count: 32)))
        #expect(MACAddress.normalized("52:54:00:AB:CD:EF") == "52:54:00:ab:cd:ef")
        #expect(MACAddress.normalized("52:54:00:AB:CD") == nil)
        #expect(MACAddress.isUnicast("52:54:00:00:00:01") && !MACAddress.isUnicast("53:54:00:00:00:01"))
        #expect(InterfaceName.isValid("br0") && !InterfaceName.isValid("br-0123456789abcd") && !InterfaceName.isValid("a b"))
    }

    /// What the daemon answers for a request that fails `validate()`.
    @Test func problemsBecomeOneInvalidRequest() {
        let problems = RequestProblems(["--cpu-weight: 0 is outside 1…10000", "--memory-shares: 0 is less than 1"])
        #expect(ControlError(problems)
            == .invalidRequest("--cpu-weight: 0 is outside 1…10000; --memory-shares: 0 is less than 1"))
    }
}
