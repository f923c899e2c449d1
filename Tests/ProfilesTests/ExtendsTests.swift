import Testing
@testable import Profiles

@Suite struct ExtendsTests {
    static let base = """
        name: base
        accel: kvm
        cpu: { count: 2, max: 4 }
        memory:
          size: 1G
          max: 2G
          slots: 2
          balloon: { min: 256M, freePageReporting: false }
        disks:
          - { id: root, file: ./base-root.qcow2, size: 10G }
          - { id: swap, file: ./swap.raw, size: 1G }
        nics: [{ id: net0 }]
        restart: on-failure
        """

    @Test func mapsMergeListsAndScalarsReplace() throws {
        let child = """
            extends: base.yaml
            name: child
            memory: { size: 512M, balloon: { min: 128M } }
            disks:
              - { id: data, file: ./data.qcow2, size: 5G }
            restart: always
            """
        let profile = try #require(loadValid("child.yaml", files: ["/vm/base.yaml": Self.base, "/vm/child.yaml": child]))
        #expect(profile.name == "child")
        #expect(profile.accel == .kvm)                         // inherited scalar
        #expect(profile.restart == .always)                    // replaced scalar
        #expect(profile.cpu == CPU(count: 2, max: 4))          // inherited map
        // memory merges key by key, down into balloon:
        #expect(profile.memory == Memory(size: .mib(512), max: .gib(2), slots: 2,
                                         balloon: Balloon(min: .mib(128), freePageReporting: false)))
        // the disk list is replaced, not appended to or merged by index:
        #expect(profile.disks.map(\.id) == ["data"])
        #expect(profile.nics.map(\.id) == ["net0"])            // inherited list
    }

    @Test func shorthandInAChildStillMergesWithTheParentMapping() throws {
        let child = "extends: base.yaml\nname: small\nmemory: 1536M\n"
        let profile = try #require(loadValid("c.yaml", files: ["/vm/base.yaml": Self.base, "/vm/c.yaml": child]))
        #expect(profile.memory.size == .mib(1536))
        #expect(profile.memory.max == .gib(2))
        #expect(profile.memory.slots == 2)
        #expect(profile.memory.balloon?.min == .mib(256))
    }

    @Test func nullInAChildRemovesAnInheritedValue() throws {
        let child = "extends: base.yaml\nname: nb\nmemory: { balloon: ~, max: ~, slots: 0 }\nnics: []\n"
        let profile = try #require(loadValid("c.yaml", files: ["/vm/base.yaml": Self.base, "/vm/c.yaml": child]))
        #expect(profile.memory == Memory(size: .gib(1)))
        #expect(profile.nics.isEmpty)
    }

    @Test func chainsAndPathsRelativeToTheDeclaringFile() throws {
        let files = [
            "/etc/corral/common/root.yaml": "name: root\nmemory: 1G\nboot: { kernel: ./vmlinuz }\n",
            "/etc/corral/common/mid.yaml": "extends: root.yaml\nname: mid\ndisks: [{ file: ../images/mid.qcow2, size: 1G }]\n",
            "/etc/corral/vms/leaf.yaml": "extends: ../common/mid.yaml\nname: leaf\ncpu: 2\n",
        ]
        let profile = try #require(loadValid(
            "/etc/corral/vms/leaf.yaml", files: files, existing: ["/etc/corral/common/vmlinuz"]))
        #expect(profile.name == "leaf")
        #expect(profile.cpu.count == 2)
        #expect(profile.memory.size == .gib(1))
        #expect(profile.boot.kernel == "/etc/corral/common/vmlinuz")
        #expect(profile.disks.map(\.file) == ["/etc/corral/images/mid.qcow2"])
    }

    @Test func aCycleIsAnErrorNamingTheChain() {
        let files = [
            "/vm/a.yaml": "extends: b.yaml\nname: a\nmemory: 1G\n",
            "/vm/b.yaml": "name: b\nextends: ./a.yaml\n",
        ]
        #expect(diagnostics("a.yaml", files: files) == ["b.yaml:2:10: extends: circular extends: a.yaml → b.yaml → a.yaml"])
        #expect(diagnostics("self.yaml", files: ["/vm/self.yaml": "extends: self.yaml\n"])
            == ["self.yaml:1:10: extends: circular extends: self.yaml → self.yaml"])
    }

    @Test func aMissingParentIsAnErrorAtTheExtendsValue() {
        let files = ["/vm/db.yaml": "name: db\nmemory: 1G\nextends: bsae.yaml\n"]
        #expect(diagnostics("db.yaml", files: files) == ["db.yaml:3:10: extends: bsae.yaml not found (looked for /vm/bsae.yaml)"])
    }

    @Test func extendsMustBeAFileName() {
        #expect(diagnostics("x.yaml", files: ["/vm/x.yaml": "extends: [a.yaml, b.yaml]\nname: x\nmemory: 1G\n"])
            == ["x.yaml:1:10: extends: expected a file name, got a list"])
    }

    @Test func diagnosticsInAParentNameTheParentFileAndComeAfterTheChild() {
        let files = [
            "/home/op/profiles/base.yaml": "name: base\nmemory: 1G\ncpu: { count: 2, max: 4, cors: 4 }\n",
            "/home/op/profiles/db.yaml": "extends: base.yaml\nname: db\ncpu: { count: 8 }\naccel: kvmm\n",
        ]
        #expect(diagnostics("profiles/db.yaml", files: files, currentDirectory: "/home/op") == [
            "profiles/db.yaml:3:15: cpu.count: 8 is more than cpu.max (4)",
            "profiles/db.yaml:4:8: accel: 'kvmm' is not one of kvm, tcg, auto",
            "profiles/base.yaml:3:26: cpu: unknown key 'cors'; did you mean 'cores'?",
        ])
    }

    @Test func syntaxErrorsInAParentAreReportedInTheParent() {
        let files = [
            "/vm/base.yaml": "name: base\nmemory: {size: 1G\n",
            "/vm/c.yaml": "extends: base.yaml\nname: c\n",
        ]
        let found = diagnostics("c.yaml", files: files)
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("base.yaml:3:1: invalid YAML: ") == true)
    }
}
