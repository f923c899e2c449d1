import CorralModel
import JSON
import Profiles
import CorralCore
import Testing

@Suite struct MigrationPlanTests {
    func caps(_ command: QMPStep) -> [String: Bool] {
        var out: [String: Bool] = [:]
        for item in command.arguments["capabilities"]?.arrayValue ?? [] {
            out[item["capability"]?.stringValue ?? "?"] = item["state"]?.boolValue
        }
        return out
    }

    @Test func destinationSetupPlainPrecopy() {
        let steps = MigrationPlan.destinationSetup(options: MigrationOptions(),
                                                   listen: "192.0.2.2:49152",
                                                   tlsCredsID: nil)
        #expect(steps.map(\.command) == ["migrate-set-capabilities", "migrate-set-parameters", "migrate-incoming"])
        #expect(caps(steps[0]) == ["events": true, "postcopy-ram": false, "multifd": false,
                                   "late-block-activate": true])
        #expect(steps[1].arguments == ["tls-creds": ""])
        #expect(steps[2].arguments == ["uri": "tcp:192.0.2.2:49152"])
    }

    @Test func destinationSetupMatchesSourceOnlyWhereItMust() {
        let options = MigrationOptions(multifdChannels: 4, autoConverge: true, tls: true)
        let steps = MigrationPlan.destinationSetup(options: options, listen: "[::1]:7",
                                                   tlsCredsID: "corral-mig-tls")
        #expect(caps(steps[0]) == ["events": true, "postcopy-ram": false, "multifd": true,
                                   "late-block-activate": true])
        #expect(steps[1].arguments == ["multifd-channels": 4, "tls-creds": "corral-mig-tls"])
        #expect(steps[2].arguments == ["uri": "tcp:[::1]:7"])
    }

    @Test func sourceSetupSetsEveryManagedCapability() {
        let steps = MigrationPlan.sourceSetup(options: MigrationOptions(), tlsCredsID: nil, tlsHostname: nil)
        #expect(steps.map(\.command) == ["migrate-set-capabilities", "migrate-set-parameters"])
        #expect(caps(steps[0]) == ["events": true, "postcopy-ram": false, "multifd": false, "auto-converge": false,
                                   "xbzrle": false, "pause-before-switchover": false])
        // Defaults are restored explicitly: an earlier attempt's settings must not leak into this one.
        #expect(steps[1].arguments == ["max-bandwidth": 134_217_728, "downtime-limit": 300,
                                       "tls-creds": "", "tls-hostname": ""])
    }

    @Test func sourceSetupWithEverything() {
        let options = MigrationOptions(bandwidthBytesPerSecond: 50 << 20, downtimeMs: 150, multifdChannels: 8,
                                       autoConverge: true, withStorage: true, tls: true)
        let steps = MigrationPlan.sourceSetup(options: options, tlsCredsID: "corral-mig-tls", tlsHostname: "192.0.2.2")
        #expect(caps(steps[0]) == ["events": true, "postcopy-ram": false, "multifd": true, "auto-converge": true,
                                   "xbzrle": false, "pause-before-switchover": true])
        #expect(steps[1].arguments == ["max-bandwidth": .int(50 << 20), "downtime-limit": 150, "multifd-channels": 8,
                                       "tls-creds": "corral-mig-tls", "tls-hostname": "192.0.2.2"])
    }

    @Test func postcopyAndXbzrleCapabilities() {
        let steps = MigrationPlan.sourceSetup(options: MigrationOptions(postcopy: true, xbzrle: true),
                                              tlsCredsID: nil, tlsHostname: "ignored")
        #expect(caps(steps[0])["postcopy-ram"] == true)
        #expect(caps(steps[0])["xbzrle"] == true)
        #expect(steps[1].arguments["tls-hostname"] == "")
        let dest = MigrationPlan.destinationSetup(options: MigrationOptions(postcopy: true),
                                                  listen: "h:1", tlsCredsID: nil)
        #expect(caps(dest[0])["postcopy-ram"] == true)
    }

    @Test func singleCommands() {
        #expect(MigrationPlan.start(uri: "tcp:192.0.2.2:4444") == QMPStep("migrate", ["uri": "tcp:192.0.2.2:4444"]))
        #expect(MigrationPlan.postcopyStart() == QMPStep("migrate-start-postcopy"))
        #expect(MigrationPlan.cancel() == QMPStep("migrate_cancel"))
        #expect(MigrationPlan.continueAfterPreSwitchover()
            == QMPStep("migrate-continue", ["state": "pre-switchover"]))
        #expect(MigrationPlan.resume() == QMPStep("cont"))
        #expect(MigrationPlan.announce() == QMPStep("announce-self", ["initial": 50, "max": 550, "rounds": 5, "step": 100]))
        #expect(MigrationPlan.nbdServerStop() == QMPStep("nbd-server-stop"))
    }

    @Test func nbdServerAndExports() {
        #expect(MigrationPlan.nbdServerStart("192.0.2.2:10809", tlsCredsID: nil)
            == QMPStep("nbd-server-start",
                                ["addr": ["type": "inet", "data": ["host": "192.0.2.2", "port": "10809"]]]))
        // QEMU's InetSocketAddress takes an IPv6 host without brackets.
        #expect(MigrationPlan.nbdServerStart("[2001:db8::2]:10809", tlsCredsID: nil).arguments["addr"]?["data"]
            == ["host": "2001:db8::2", "port": "10809"])
        #expect(MigrationPlan.nbdServerStart("h:1", tlsCredsID: "t").arguments["tls-creds"] == "t")
        #expect(MigrationPlan.blockExportAdd(nodeName: "fmt-root", exportName: "fmt-root")
            == QMPStep("block-export-add", ["type": "nbd", "id": "export-fmt-root", "node-name": "fmt-root",
                                                     "name": "fmt-root", "writable": true]))
    }

    @Test func sourceMirrorsFollowTheNamingRule() {
        let disk = MigrationDisk(formatNode: "fmt-root")
        #expect(disk.exportName == "fmt-root")
        #expect(disk.nbdClientNode == "nbd-root")
        #expect(disk.mirrorJobID == "mirror-fmt-root")
        let nbd: HostPort = "192.0.2.2:10809"
        let steps = MigrationPlan.startMirrors([disk], nbd: nbd, tlsCredsID: nil)
        #expect(steps == [
            QMPStep("blockdev-add", ["driver": "nbd", "node-name": "nbd-root",
                                              "server": ["type": "inet", "host": "192.0.2.2", "port": "10809"],
                                              "export": "fmt-root"]),
            QMPStep("blockdev-mirror", ["job-id": "mirror-fmt-root", "device": "fmt-root",
                                                 "target": "nbd-root", "sync": "full"]),
        ])
        #expect(MigrationPlan.startMirrors([disk], nbd: nbd, tlsCredsID: "t")[0].arguments["tls-creds"] == "t")
        #expect(MigrationPlan.startMirrors([disk], nbd: "[2001:db8::2]:10809", tlsCredsID: nil)[0].arguments["server"]
            == ["type": "inet", "host": "2001:db8::2", "port": "10809"])
        #expect(MigrationPlan.finishMirrors([disk], force: false)
            == [QMPStep("block-job-cancel", ["device": "mirror-fmt-root"])])
        #expect(MigrationPlan.finishMirrors([disk], force: true)
            == [QMPStep("block-job-cancel", ["device": "mirror-fmt-root", "force": true])])
        #expect(MigrationPlan.removeNBDClients([disk]) == [QMPStep("blockdev-del", ["node-name": "nbd-root"])])
        #expect(MigrationPlan.exportDisks([disk]) == [MigrationPlan.blockExportAdd(nodeName: "fmt-root",
                                                                                    exportName: "fmt-root")])
    }

    @Test func nbdNodeNamesStayWithinQEMULimitForLongDiskIDs() {
        let disk = Disk(id: "a-really-long-disk-identifier-that-goes-on", file: "/x.qcow2")
        let migration = MigrationDisk(disk)
        #expect(migration.formatNode.utf8.count <= 31)
        #expect(migration.nbdClientNode.utf8.count <= 31)
        #expect(migration.nbdClientNode.hasPrefix("nbd-"))
        #expect(migration.nbdClientNode.dropFirst(4) == migration.formatNode.dropFirst(4))
    }

    @Test func tlsCredsObject() {
        let object = MigrationPlan.tlsCredsObject(id: "corral-mig-tls", endpoint: .server, dir: "/etc/corral/tls")
        #expect(object == ["qom-type": "tls-creds-x509", "id": "corral-mig-tls", "endpoint": "server",
                           "dir": "/etc/corral/tls", "verify-peer": true])
        #expect(MigrationPlan.objectAdd(object).command == "object-add")
        #expect(MigrationPlan.objectDel(id: "corral-mig-tls") == QMPStep("object-del", ["id": "corral-mig-tls"]))
        #expect(MigrationPlan.tlsCredsObject(id: "x", endpoint: .client, dir: "/d", verifyPeer: false)["verify-peer"]
            == false)
    }

    @Test func migrationURIsBracketIPv6Once() throws {
        #expect(try HostPort(host: "192.0.2.1", port: 1).migrationURI == "tcp:192.0.2.1:1")
        #expect(try HostPort(host: "fe80::1", port: 2).migrationURI == "tcp:[fe80::1]:2")
        #expect(try HostPort(parsing: "[::1]:3").migrationURI == "tcp:[::1]:3")
        #expect(try HostPort(host: "host-b", port: 4).migrationURI == "tcp:host-b:4")
        #expect(try HostPort(host: "2001:db8::2", port: 0).migrationURI == "tcp:[2001:db8::2]:0")
    }
}
