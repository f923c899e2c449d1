import CorralModel
import CorralWire
import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JSON

#if canImport(Glibc)
import Glibc
#endif

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Live-migrate a VM to another corral daemon (or cancel a running migration).",
        discussion: """
            The destination is another daemon's TCP API (`corral daemon --listen HOST:PORT --token-file F`);
            --token-file is the destination's token. Without --with-storage both hosts must see the VM's
            disk images at the same paths (shared storage). On any failure before the switch-over the VM
            keeps running here. On a terminal a progress bar is redrawn in place; otherwise one progress
            line is printed per second at most; --json prints the daemon's NDJSON lines as they come
            ({"progress": …} lines, then one {"result": …} or {"error": …} line).
            `corral migrate --cancel NAME` stops a running migration; the VM keeps running here.
            Exit codes: 0 migrated (or cancel requested), 1 the migration failed or was cancelled,
            2 invalid options.
            """)

    @Argument(help: "VM name.")
    var name: String

    @Option(help: ArgumentHelp(
        "The destination daemon's TCP API (an IPv6 address in brackets: [2001:db8::2]:7070); in a cluster, a host's "
            + "name, or 'auto': the host that can take the VM (admission limits, QEMU version, CPU model for "
            + "cpu.model: host, not draining) with the most memory left, then the fewest VMs.", valueName: "HOST:PORT|NAME|auto"))
    var to: String?

    @Option(help: ArgumentHelp("File whose first line is the destination daemon's bearer token (in a cluster, by "
        + "default the daemon's own --peer-token-file, which every host of the cluster shares)."))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Cap the migration stream, e.g. 100M/s (default: QEMU's 128M/s).", valueName: "SIZE/s"))
    var bandwidth: String?

    @Option(help: ArgumentHelp("Longest acceptable pause of the guest at switch-over (default 300).", valueName: "N"))
    var downtimeMs: Int?

    @Flag(help: "Switch to postcopy after the first RAM pass (a failure after the switch loses the guest).")
    var postcopy = false

    @Option(help: ArgumentHelp("Send over N parallel channels.", valueName: "N"))
    var multifd: Int?

    @Flag(help: "Throttle the guest's vCPUs when its memory does not converge.")
    var autoConverge = false

    @Flag(help: "Send deltas of re-dirtied pages (XBZRLE).")
    var xbzrle = false

    @Flag(help: "Copy the disks to the destination too (no shared storage needed).")
    var withStorage = false

    @Flag(help: "Encrypt the stream with each daemon's x509 certificates.")
    var tls = false

    @Option(help: ArgumentHelp("Give up (the VM stays here) when not done after S seconds.", valueName: "S"))
    var timeout: Int?

    @Flag(help: "Cancel the running migration of NAME.")
    var cancel = false

    @Flag(help: "Print the daemon's NDJSON lines (progress events, then the result) as they come.")
    var json = false

    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        if cancel {
            let migrationFlags = to != nil || tokenFile != nil || bandwidth != nil || downtimeMs != nil || postcopy
                || multifd != nil || autoConverge || xbzrle || withStorage || tls || timeout != nil
            if migrationFlags { throw ValidationError("--cancel takes only the VM name") }
        } else if to == nil {
            throw ValidationError("--to HOST:PORT (or, in a cluster, --to NAME|auto) is required")
        }
    }

    func run() async throws {
        if cancel {
            try await DaemonCall.run(socket: socket.resolved) { try await $0.cancelMigration(name) }
            Terminal.out("\(name): cancel requested")
            return
        }
        guard var to else { return }
        // A host name (no port) or auto: the daemon places the VM in its cluster and says where.
        if !to.contains(":") {
            let target = to
            let placed = try await DaemonCall.run(socket: socket.resolved) { try await $0.placement(name, to: target) }
            if !json { Terminal.out("\(name): to host \(placed.host) (\(placed.address))") }
            to = placed.address
        }
        let request: MigrateRequest
        switch Self.request(to: to, tokenFile: tokenFile, options: options) {
        case .success(let built): request = built
        case .failure(let problems):
            for problem in problems.messages { Terminal.err("error: \(problem)") }
            throw ExitCode(ExitCodeValue.invalid.rawValue)
        }
        let display = ProgressDisplay(mode: json ? .json : (Terminal.stdoutIsTTY ? .bar : .lines), name: name)
        let result = try await DaemonCall.run(socket: socket.resolved) { client in
            defer { display.end() }
            for try await line in try await client.migrate(name, request) {
                display.show(line)
                switch line.update {
                case .progress: continue
                case .completed(let result): return result
                case .failed(let error): throw error
                }
            }
            throw CorralClientError.transport("the daemon ended the migration stream without a result")
        }
        if !json { Terminal.out(Self.summary(result, to: request.to)) }
    }

    /// The options as given on the command line (bandwidth not yet parsed).
    var options: Options {
        Options(bandwidth: bandwidth, downtimeMs: downtimeMs, postcopy: postcopy, multifd: multifd,
                autoConverge: autoConverge, xbzrle: xbzrle, withStorage: withStorage, tls: tls, timeout: timeout)
    }

    struct Options {
        var bandwidth: String?
        var downtimeMs: Int?
        var postcopy = false
        var multifd: Int?
        var autoConverge = false
        var xbzrle = false
        var withStorage = false
        var tls = false
        var timeout: Int?
    }

    struct Problems: Error, Equatable {
        var messages: [String]
    }

    /// Builds the request and reports every problem at once: the command line's own (`--to` that is not
    /// HOST:PORT, `--bandwidth`, `--token-file`), then `MigrateRequest.validate()`'s, which the daemon checks again.
    static func request(to: String, tokenFile: String?, options given: Options) -> Result<MigrateRequest, Problems> {
        var problems: [String] = []
        var destination: HostPort?
        do { destination = try HostPort(parsing: to) } catch { problems.append("--to: \(error.description)") }
        var options = MigrationOptions(downtimeMs: given.downtimeMs, postcopy: given.postcopy,
                                       multifdChannels: given.multifd, autoConverge: given.autoConverge,
                                       xbzrle: given.xbzrle, withStorage: given.withStorage, tls: given.tls,
                                       timeoutSeconds: given.timeout)
        if let text = given.bandwidth {
            switch parseBandwidth(text) {
            case .success(let bytes): options.bandwidthBytesPerSecond = bytes
            case .failure(let problem): problems.append(problem.messages[0])
            }
        }
        var token: String?
        if let tokenFile {
            do { token = try BearerToken.load(file: tokenFile) } catch { problems.append("--token-file: \(error.description)") }
        }
        guard let destination else {
            return .failure(Problems(messages: problems + options.problems()))
        }
        let request = MigrateRequest(to: destination, token: token, options: options)
        do { try request.validate() } catch { problems += error.messages }
        guard problems.isEmpty else { return .failure(Problems(messages: problems)) }
        return .success(request)
    }

    /// `100M/s` or `100M` → bytes per second (binary units, like every corral size).
    static func parseBandwidth(_ text: String) -> Result<Int64, Problems> {
        var size = Substring(text)
        if size.hasSuffix("/s") { size = size.dropLast(2) }
        do {
            let parsed = try ByteSize(parsing: String(size))
            guard parsed.bytes <= UInt64(Int64.max) else {
                return .failure(Problems(messages: ["--bandwidth: '\(text)' is too large"]))
            }
            return .success(Int64(parsed.bytes))
        } catch {
            return .failure(Problems(messages: ["--bandwidth: \(error.description) (e.g. 100M/s)"]))
        }
    }

    /// `web migrated to 192.0.2.2:7070 in 3.4 s (downtime 12 ms)`.
    static func summary(_ result: MigrationResult, to: HostPort) -> String {
        var line = "\(result.name) migrated to \(to)"
        if let ms = result.totalMilliseconds { line += " in \(ms / 1000).\((ms % 1000) / 100) s" }
        if let downtime = result.downtimeMilliseconds { line += " (downtime \(downtime) ms)" }
        return line
    }
}

/// Shows a long operation's progress: a bar redrawn in place (terminal), one line a second at most (pipe), or the
/// raw NDJSON lines. Migrations, evacuations and `corral convert` draw with it.
package final class ProgressDisplay {
    package enum Mode { case bar, lines, json }
    package let mode: Mode
    package let name: String
    private var barShown = false
    private var lastLine: ContinuousClock.Instant?
    /// Cells between the brackets on a terminal.
    package static let barWidth = 30

    package init(mode: Mode, name: String) {
        self.mode = mode
        self.name = name
    }

    /// A bar on a terminal, a plain line in a pipe, per the mode: the JSON text for `.json`.
    package convenience init(json: Bool, name: String) {
        self.init(mode: json ? .json : (Terminal.stdoutIsTTY ? .bar : .lines), name: name)
    }

    /// Progress: `render(width)` draws the bar with that many cells; `json` is the NDJSON line for `.json`.
    package func show(render: (Int) -> String, json: @autoclosure () -> String) {
        switch mode {
        case .json:
            Terminal.out(json())
        case .bar:
            Self.writeRaw("\r\u{1B}[K" + render(Self.barWidth))
            barShown = true
        case .lines:
            let now = ContinuousClock.now
            if let lastLine, now - lastLine < .seconds(1) { return }
            lastLine = now
            Terminal.out("\(name): " + render(20))
        }
    }

    /// A line that is not progress (a result, an error): printed in `.json` mode only.
    package func showJSON(_ text: String) {
        if mode == .json { Terminal.out(text) }
    }

    /// Ends the redrawn line so what follows starts on its own.
    package func end() {
        if barShown { Self.writeRaw("\n") }
        barShown = false
    }

    package static func writeRaw(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(n)
        }
    }
}

extension ProgressDisplay {
    /// A migration's stream line: its progress drawn, anything else only in `.json` mode.
    func show(_ line: MigrationStreamLine) {
        guard case .progress(let progress) = line.update else {
            showJSON(line.text)
            return
        }
        show(render: { progress.renderBar(width: $0) }, json: line.text)
    }
}
