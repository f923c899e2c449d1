import Testing
@testable import Profiles

/// `cloudInit:`: inline documents and files, and the diagnostic for each mistake.
struct CloudInitProfileTests {
    static func profile(_ cloudInit: String, disks: String = "") -> [String: String] {
        ["/vm/p.yaml": "name: p\nmemory: 1G\n\(disks)cloudInit:\n\(cloudInit)\n"]
    }

    @Test func inlineDocumentsAndFilesDecode() throws {
        let files = Self.profile("""
              hostname: web-1.example
              userData: |
                #cloud-config
                packages: [ nginx ]
              metaData: seed/meta.yaml
              networkConfig: /etc/corral/net.yaml
              sshKeys: [ "ssh-ed25519 AAAAC3Nza key@host" ]
            """)
        let profile = try #require(loadValid("/vm/p.yaml", files: files, checkFiles: false))
        #expect(profile.cloudInit == CloudInit(hostname: "web-1.example",
                                               userData: .inline("#cloud-config\npackages: [ nginx ]\n"),
                                               metaData: .file("/vm/seed/meta.yaml"),
                                               networkConfig: .file("/etc/corral/net.yaml"),
                                               sshKeys: ["ssh-ed25519 AAAAC3Nza key@host"]))
        // With files checked, a missing document file is named.
        #expect(diagnostics("/vm/p.yaml", files: files, existing: ["/etc/corral/net.yaml"]) == [
            "/vm/p.yaml:8:13: cloudInit.metaData: /vm/seed/meta.yaml does not exist (a value that spans lines or "
                + "starts with '#' is the document itself; anything else is a file path)",
        ])
    }

    static let cases: [(cloudInit: String, disks: String, expected: String)] = [
        ("  hostname: -bad-", "", "/vm/p.yaml:4:13: cloudInit.hostname: '-bad-' is not a host name (letters, digits and "
            + "'-' in dot-separated labels of at most 63 characters, 253 in all, no label starting or ending with '-')"),
        ("  userData: |\n    packages: [ nginx ]\n", "",
         "/vm/p.yaml:4:13: cloudInit.userData: cloud-init ignores user-data that does not start with one of "
            + "#cloud-config, #!, #include, #cloud-boothook, #part-handler, ## template:, Content-Type:"),
        ("  sshKeys: [ \"AAAAC3Nza key@host\" ]", "",
         "/vm/p.yaml:4:14: cloudInit.sshKeys[0]: is not an SSH public key ('ssh-ed25519 AAAA… comment', 'ssh-rsa …', 'ecdsa-sha2-…')"),
        ("  sshKeys: ssh-ed25519 AAAA", "",
         "/vm/p.yaml:4:12: cloudInit.sshKeys: expected a list of SSH public keys, got 'ssh-ed25519 AAAA'"),
        ("  userdata: x", "", "/vm/p.yaml:4:3: cloudInit: unknown key 'userdata'; did you mean 'userData'?"),
        ("  hostname: h", "disks: [ { id: cidata, file: /v/a.qcow2 } ]\n",
         "/vm/p.yaml:3:16: disks[0].id: 'cidata' is the cloud-init seed's id; choose another"),
    ]

    @Test(arguments: 0..<cases.count)
    func eachMistakeIsNamed(_ index: Int) {
        let c = Self.cases[index]
        let found = diagnostics("/vm/p.yaml", files: Self.profile(c.cloudInit, disks: c.disks), checkFiles: false)
        #expect(found == [c.expected])
    }
}

/// Disks given only a size: managed volumes placed in the VM's folder by the daemon.
struct ManagedDiskProfileTests {
    @Test func aSizeAloneIsAManagedVolumeAndNeitherIsNamed() throws {
        let files = ["/vm/p.yaml": "name: p\nmemory: 1G\ndisks:\n  - { id: data, size: 10G }\n  - { id: raw1, size: 1G, format: raw }\n"]
        let profile = try #require(loadValid("/vm/p.yaml", files: files))
        #expect(profile.disks.map(\.isManaged) == [true, true])
        let placed = profile.resolvingManagedDisks(in: "/var/lib/corral/vms/p")
        #expect(placed.disks.map(\.file) == ["/var/lib/corral/vms/p/disks/data.qcow2", "/var/lib/corral/vms/p/disks/raw1.raw"])
        #expect(placed.resolvingManagedDisks(in: "/elsewhere") == placed, "placing twice changes nothing")
        #expect(diagnostics("/vm/p.yaml", files: ["/vm/p.yaml": "name: p\nmemory: 1G\ndisks:\n  - { id: data }\n"]) == [
            "/vm/p.yaml:4:5: disks[0]: give file (an image), size (a new volume corral keeps in the VM's folder), "
                + "or both (an image created with that size)",
        ])
    }
}

/// `disks[].backing`: an overlay on a base image.
struct BackingProfileTests {
    @Test func aBaseImageMakesAManagedOverlayAndMistakesAreNamed() throws {
        let files = ["/vm/p.yaml": "name: p\nmemory: 1G\ndisks:\n  - { id: root, backing: ../images/base.img }\n"]
        let profile = try #require(loadValid("/vm/p.yaml", files: files, existing: ["/images/base.img"]))
        #expect(profile.disks[0].backing == "/images/base.img" && profile.disks[0].isManaged)
        #expect(diagnostics("/vm/p.yaml", files: files) == ["/vm/p.yaml:4:26: disks[0].backing: /images/base.img does not exist"])
        let raw = ["/vm/p.yaml": "name: p\nmemory: 1G\ndisks:\n  - { id: root, file: /v/r.raw, backing: /images/base.img }\n"]
        #expect(diagnostics("/vm/p.yaml", files: raw, checkFiles: false)
            == ["/vm/p.yaml:4:5: disks[0].format: an overlay on a base image is qcow2, got raw"])
    }
}
