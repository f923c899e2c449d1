import CorralModel
import CorralWire
import Foundation
import Supervisor
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The web dashboard in a real browser (headless Chromium) against a real `corral daemon --web` with the test guest:
/// the login, the VM list from the event stream, the serial console (xterm.js) both ways, the VNC canvas (noVNC),
/// a disk, a NIC and a vCPU plugged (and the disk and NIC unplugged) and a stop from the page, each checked where it happens (the guest, the daemon). Screenshots go
/// to `.build/test-artifacts/web/`.
@Suite(.serialized, .bootsGuests, .timeLimit(.minutes(8))) struct WebDashboardTests {
    static let artifacts = Guest.repoRoot + "/.build/test-artifacts/web"

    /// The login form is on screen: the page's script has run and shown it.
    static let loginShown = "!!document.querySelector('#login-view') && !document.querySelector('#login-view').hidden && "
        + "getComputedStyle(document.querySelector('#login-view')).display !== 'none'"

    /// Types `token` into the login form and submits it, as an operator would.
    static func submitToken(_ token: String, in browser: Browser) throws {
        _ = try browser.evaluate("document.querySelector('#token').value = '\(token)'; "
            + "document.querySelector('#login-submit').click(); true")
    }

    /// `scripts/build-web-assets` into `folder`.
    static func buildAssets(into folder: String) async throws {
        let result = try await ProcessLauncher.run(Guest.repoRoot + "/scripts/build-web-assets", [folder])
        try #require(result.status == .exited(0), "scripts/build-web-assets: \(result.output)")
    }

    /// The dashboard's address from the daemon's log (`listening web=http://127.0.0.1:PORT/`).
    static func webURL(_ daemon: DaemonCLITests.Daemon) async throws -> String {
        let line = try #require(await LineWait.first(in: daemon.log, within: .seconds(60)) { $0.contains("web=http://") })
        let start = try #require(line.range(of: "web=")).upperBound
        return String(line[start...].prefix { !$0.isWhitespace })
    }

    @Test func anOperatorLogsInWatchesTheConsoleAndDisplayPlugsDevicesAndStopsTheVM() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("web")
        defer { DaemonCLITests.cleanUp(root) }
        try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
        try await Self.buildAssets(into: root + "/assets")
        let token = "dashboard-test-token-0123456789"
        try (token + "\n").write(toFile: root + "/token", atomically: true, encoding: .utf8)
        let daemon = try await DaemonCLITests.Daemon.start(
            root: root, extra: ["--web", "127.0.0.1:0", "--token-file", root + "/token", "--web-assets", root + "/assets"])
        let url = try await Self.webURL(daemon)
        let profile = try Guest.writeProfile(in: root, name: "webvm", memory: "{ size: 256M, balloon: { min: 128M } }",
                                             extra: "display: { vga: std, vnc: true }\nhotplug: { slots: 4 }\n")
        let up = try await daemon.run("up", profile)
        try #require(up.status == .exited(0), "\(up)")
        let status = try await daemon.json(VMStatus.self, "status", "webvm")
        _ = try await HeartbeatWait.first(in: status.serialLog)

        let browser = try await Browser.launch(folder: root + "/browser")
        let artifacts = Self.artifacts
        let checks = ThreadChecks()
        do {
            // The login: a wrong token is refused in the page's own words, the right one shows the list.
            try await Browser.onThread {
                try browser.navigate(url)
                checks.expect(try browser.waitUntil(Self.loginShown))
                try Self.submitToken("wrong", in: browser)
                checks.expect(try browser.waitUntil("document.querySelector('#login-error').textContent.includes('wrong token')"))
                try browser.screenshot(to: artifacts + "/login.png")
                try Self.submitToken(token, in: browser)
                checks.expect(try browser.waitUntil("document.body.dataset.ready === '1'"))
                checks.expect(try browser.waitUntil(
                    "document.querySelector('tr[data-vm=\"webvm\"] td.state')?.textContent === 'running'"))
                // The session cookie is HttpOnly: the page's script cannot read it.
                checks.expect(try browser.evaluate("document.cookie") as? String == "")
                try browser.screenshot(to: artifacts + "/list.png")
            }
            checks.report()

            // The VM's page: heartbeats in the console, a typed line reaches the guest, the display is drawn.
            try await Browser.onThread {
                try browser.navigate(url + "#/vm/webvm")
                checks.expect(try browser.waitUntil("document.querySelector('#vm-state')?.textContent === 'running'"))
                checks.expect(try browser.waitUntil(
                    "(document.querySelector('#console .xterm-rows')?.textContent ?? '').includes('CORRAL-HB')",
                    within: 90), "the console shows the guest's heartbeats")
                // The console takes the panel's width: a whole heartbeat line (over 100 characters) fits on one row.
                checks.expect(try browser.waitUntil("[...document.querySelectorAll('#console .xterm-rows > div')]"
                    + ".some((row) => row.textContent.includes('CORRAL-HB') && row.textContent.includes('seed='))"),
                    "a heartbeat line is not wrapped")
                _ = try browser.evaluate("document.querySelector('#console .xterm-helper-textarea').focus(); true")
                try browser.type("typed-in-the-browser\r")
                checks.expect(try browser.waitUntil(
                    "(document.querySelector('#console .xterm-rows')?.textContent ?? '').includes('console read: typed-in-the-browser')",
                    within: 60))
                let drawn = """
                    (() => { const c = document.querySelector('#vnc canvas');
                      if (!c || c.width < 100 || c.height < 100) return false;
                      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 60) lit++;
                      return lit > 200; })()
                    """
                checks.expect(try browser.waitUntil(drawn, within: 90), "the VNC canvas shows the guest's screen")
                // The graphs: QEMU's CPU time as a rate (from the status), the guest's memory (from the balloon).
                checks.expect(try browser.waitUntil("Number(document.querySelector('#cpu-graph').dataset.points) >= 3 && "
                    + "Number(document.querySelector('#cpu-graph').dataset.cpu) > 0", within: 60))
                checks.expect(try browser.waitUntil("Number(document.querySelector('#mem-graph').dataset.balloon) === 256 && "
                    + "Number(document.querySelector('#mem-graph').dataset.used) > 0", within: 60))
                try browser.screenshot(to: artifacts + "/vm.png", fullPage: true)
            }
            checks.report()
            // (QEMU writes a chunk to the console socket before its log: wait for the log.)
            #expect(await LineWait.first(in: status.serialLog, within: .seconds(60)) {
                $0.contains("corral-init: console read: typed-in-the-browser")
            } != nil, "the guest read the typed line")

            // A disk (a new managed volume) and a NIC added with the page's forms: the guest sees both, the tables
            // list them; their Remove buttons unplug them again.
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#disk-id').value = 'data1'; "
                    + "document.querySelector('#disk-size').value = '32M'; "
                    + "document.querySelector('#disk-add-form').requestSubmit(); true")
                checks.expect(try browser.waitUntil("!!document.querySelector('#vm-disks tr[data-disk=\"data1\"]')", within: 60),
                              "the disk table lists the new disk")
                _ = try browser.evaluate("document.querySelector('#nic-id').value = 'net1'; "
                    + "document.querySelector('#nic-add-form').requestSubmit(); true")
                checks.expect(try browser.waitUntil("!!document.querySelector('#vm-nics tr[data-nic=\"net1\"]')", within: 60),
                              "the NIC table lists the new NIC")
                try browser.screenshot(to: artifacts + "/devices.png", fullPage: true)
            }
            checks.report()
            _ = try await HeartbeatWait.first(in: status.serialLog, within: .seconds(120)) {
                $0.disks == ["vda"] && $0.nics == ["eth0", "eth1"]
            }
            let plugged = try await daemon.json(VMStatus.self, "status", "webvm")
            #expect(plugged.disks.map(\.id) == ["data1"])
            #expect(plugged.nics.map(\.id) == ["net0", "net1"])
            // (Heartbeats from before the plug match too: read only what the guest writes from here on.)
            let beforeUnplug = Guest.size(status.serialLog)
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#vm-disks button[data-remove=\"disk\"][data-id=\"data1\"]').click(); "
                    + "document.querySelector('#vm-nics button[data-remove=\"nic\"][data-id=\"net1\"]').click(); true")
                checks.expect(try browser.waitUntil("!document.querySelector('#vm-disks tr[data-disk=\"data1\"]') && "
                    + "!document.querySelector('#vm-nics tr[data-nic=\"net1\"]')", within: 120),
                              "both rows leave the tables once the guest has let go")
            }
            checks.report()
            _ = try await HeartbeatWait.first(in: status.serialLog, from: beforeUnplug, within: .seconds(120)) {
                $0.disks.isEmpty && $0.nics == ["eth0"]
            }
            let unplugged = try await daemon.json(VMStatus.self, "status", "webvm")
            #expect(unplugged.disks.isEmpty && unplugged.nics.map(\.id) == ["net0"] && unplugged.unplugPending.isEmpty)

            // The balloon from the page: QEMU's balloon and the guest's memory shrink to the target, the graph follows.
            let beforeBalloon = Guest.size(status.serialLog)
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#balloon-size').value = '192M'; "
                    + "document.querySelector('#balloon-form').requestSubmit(); true")
                checks.expect(try browser.waitUntil("Number(document.querySelector('#mem-graph').dataset.balloon) === 192",
                                                    within: 90), "the memory graph shows the new balloon size")
            }
            checks.report()
            let squeezed = try await HeartbeatWait.first(in: status.serialLog, from: beforeBalloon, within: .seconds(120)) {
                $0.memKB < 200_000
            }
            #expect(squeezed.memKB < 200_000, "the guest gave 64 MiB back")
            #expect(try await daemon.json(VMStatus.self, "status", "webvm").memory.balloonBytes == 192 << 20)

            // Pause and resume from the page: the guest stops and goes on (its counter keeps going, no reboot).
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#vm-view button[data-action=\"pause\"]').click(); true")
                checks.expect(try browser.waitUntil("document.querySelector('#vm-state')?.textContent === 'paused'",
                                                    within: 60), "the page says paused")
            }
            checks.report()
            #expect(try await daemon.json(VMStatus.self, "status", "webvm").state == .paused)
            let pausedAt = Guest.size(status.serialLog)
            let lastBeat = HeartbeatWait.last(in: status.serialLog)
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#vm-view button[data-action=\"resume\"]').click(); true")
                checks.expect(try browser.waitUntil("document.querySelector('#vm-state')?.textContent === 'running'",
                                                    within: 60), "the page says running again")
            }
            checks.report()
            let resumed = try await HeartbeatWait.first(in: status.serialLog, from: pausedAt, within: .seconds(60))
            #expect(resumed.n > (lastBeat?.n ?? 0), "the guest went on where it stopped")

            // A vCPU plugged from the page: the guest brings it online.
            let offset = Guest.size(status.serialLog)
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#cpus-count').value = '2'; "
                    + "document.querySelector('#cpus-form').requestSubmit(); true")
            }
            checks.report()
            let beat = try await HeartbeatWait.first(in: status.serialLog, from: offset, within: .seconds(120)) {
                $0.cpus == 2
            }
            #expect(beat.cpus == 2)
            #expect(try await daemon.json(VMStatus.self, "status", "webvm").cpus.online == 2)

            // Stop from the page: the guest powers off, the page and the daemon say stopped.
            try await Browser.onThread {
                _ = try browser.evaluate("document.querySelector('#vm-view button[data-action=\"stop\"]').click(); true")
                checks.expect(try browser.waitUntil("document.querySelector('#vm-state')?.textContent === 'stopped'",
                                              within: 150))
                try browser.screenshot(to: artifacts + "/stopped.png")
                checks.expect(browser.pageErrors == [], "uncaught errors in the page: \(browser.pageErrors)")
            }
            checks.report()
            #expect(try await daemon.json(VMStatus.self, "status", "webvm").state == .stopped)
            #expect(await LineWait.first(in: status.serialLog, within: .seconds(30)) { $0.contains("CORRAL-POWEROFF") } != nil,
                    "the guest was asked to power off, not killed")
        } catch {
            checks.report()
            await browser.close()
            throw error
        }
        await browser.close()
        _ = try await daemon.run("rm", "webvm")
    }

    @Test func withoutItsFilesOrATokenTheDaemonRefusesToStartAndLeavesNothing() async throws {
        let root = Guest.tempFolder("webbad")
        defer { DaemonCLITests.cleanUp(root) }
        try "t0k3n\n".write(toFile: root + "/token", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        let common = ["daemon", "--state-dir", root + "/state", "--socket", root + "/d.sock", "--no-ksm"]
        let noToken = try await ProcessLauncher.run(DaemonCLITests.binary, common + ["--web", "127.0.0.1:0"])
        #expect(noToken.status == .exited(64), "\(noToken.output)")
        #expect(noToken.output.contains("--web needs --token-file"))
        let noFiles = try await ProcessLauncher.run(
            DaemonCLITests.binary,
            common + ["--web", "127.0.0.1:0", "--token-file", root + "/token", "--web-assets", root + "/empty"])
        #expect(noFiles.status == .exited(1), "\(noFiles.output)")
        #expect(noFiles.output.contains(root + "/empty/index.html") && noFiles.output.contains("scripts/build-web-assets"),
                "\(noFiles.output)")
        #expect(!FileManager.default.fileExists(atPath: root + "/d.sock"), "no socket left behind")
    }

    /// A migration started from the page: the progress bar fills, the page reports where the VM went, and the guest
    /// runs on under the other daemon.
    @Test func aMigrationFromThePageMovesTheGuestToAnotherDaemon() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("webmig")
        defer { DaemonCLITests.cleanUp(root) }
        try await Self.buildAssets(into: root + "/assets")
        let token = "dashboard-migration-token-42"
        let peerToken = "the-destination-token-4242"
        try (token + "\n").write(toFile: root + "/token", atomically: true, encoding: .utf8)
        try (peerToken + "\n").write(toFile: root + "/peer-token", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/b", withIntermediateDirectories: true)
        let source = try await DaemonCLITests.Daemon.start(
            root: root, extra: ["--web", "127.0.0.1:0", "--token-file", root + "/token", "--web-assets", root + "/assets"])
        let destination = try await DaemonCLITests.Daemon.start(
            root: root + "/b", extra: ["--listen", "127.0.0.1:0", "--token-file", root + "/peer-token",
                                       "--uid-range", "2100000-2165535"])
        let url = try await Self.webURL(source)
        let line = try #require(await LineWait.first(in: destination.log, within: .seconds(60)) { $0.contains("tcp=127.0.0.1:") })
        let to = try #require(line.split(separator: " ").first { $0.hasPrefix("tcp=127.0.0.1:") }).dropFirst(4)
        let profile = try Guest.writeProfile(in: root, name: "mover")
        let up = try await source.run("up", profile)
        try #require(up.status == .exited(0), "\(up)")
        _ = try await HeartbeatWait.first(in: try await source.json(VMStatus.self, "status", "mover").serialLog)

        let browser = try await Browser.launch(folder: root + "/browser")
        let artifacts = Self.artifacts
        let checks = ThreadChecks()
        do {
            try await Browser.onThread {
                try browser.navigate(url)
                // The page shows its login once its script runs (a click before that would not be the page's).
                checks.expect(try browser.waitUntil(Self.loginShown))
                try Self.submitToken(token, in: browser)
                checks.expect(try browser.waitUntil("document.body.dataset.ready === '1'"))
                try browser.navigate(url + "#/vm/mover")
                checks.expect(try browser.waitUntil("document.querySelector('#vm-state')?.textContent === 'running'"))
                _ = try browser.evaluate("document.querySelector('#migrate-to').value = '\(to)'; "
                    + "document.querySelector('#migrate-token').value = '\(peerToken)'; "
                    + "document.querySelector('#migrate-form').requestSubmit(); true")
                checks.expect(try browser.waitUntil(
                    "(document.querySelector('#migrate-status')?.textContent ?? '').includes('Migrated to \(to)')",
                    within: 180), "the page reports the migration's result")
                checks.expect(try browser.evaluate("document.querySelector('#migrate-progress').value") as? Double == 100)
                try browser.screenshot(to: artifacts + "/migrated.png", fullPage: true)
                checks.expect(browser.pageErrors == [], "uncaught errors in the page: \(browser.pageErrors)")
            }
            checks.report()
        } catch {
            checks.report()
            await browser.close()
            throw error
        }
        await browser.close()
        // The destination owns the VM now, and the guest goes on there (no second boot: its counter keeps going).
        let moved = try await destination.json(VMStatus.self, "status", "mover")
        #expect(moved.state == .running)
        let beat = try await HeartbeatWait.first(in: moved.serialLog, within: .seconds(60))
        #expect(beat.n > 1, "the guest carried on rather than booting again")
        let listed = try await source.run("ls")
        #expect(!listed.output.contains("mover"), "the source forgot the VM: \(listed.output)")
        _ = try await destination.run("kill", "mover")
        _ = try await destination.run("rm", "mover")
    }
}

