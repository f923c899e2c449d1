import ArgumentParser
import CorralModel
import CorralWire

/// `corral daemon`'s flags, parsed and checked the same way by `corral` (which then hands over to the daemon
/// executable) and by `corrald` itself.
package struct DaemonFlags: ParsableArguments {
    @OptionGroup package var stateDir: StateDirOption
    @OptionGroup package var socket: DaemonSocketOption

    @Option(help: ArgumentHelp(
        "Also listen on TCP (e.g. 192.0.2.10:7070, [2001:db8::10]:7070; port 0: any free port); needs --token-file.",
        valueName: "HOST:PORT"), transform: { try HostPort(parsing: $0) })
    package var listen: HostPort?

    @Option(help: "File whose first line is the bearer token TCP clients must present (the admin token: every route).")
    package var tokenFile: String?

    @Option(help: ArgumentHelp(
        "File whose first line is the token other daemons use to migrate VMs here: it opens only the migration routes "
            + "(prepare, commit, abort, a VM's state); everything else is 403. Give it to peers instead of --token-file's.",
        valueName: "FILE"))
    package var peerTokenFile: String?

    @Option(help: ArgumentHelp(
        "File whose first line is the token a metrics scraper presents: it opens only GET /metrics; everything else "
            + "is 403. Give it to Prometheus instead of --token-file's.", valueName: "FILE"))
    package var metricsTokenFile: String?

    @Option(help: ArgumentHelp(
        "Serve the web dashboard on this address (e.g. 127.0.0.1:8080; port 0: any free port): log in with the admin "
            + "token (--token-file), then a session cookie. Plain HTTP: keep it on loopback or behind a TLS proxy.",
        valueName: "HOST:PORT"), transform: { try HostPort(parsing: $0) })
    package var web: HostPort?

    @Flag(help: ArgumentHelp(
        "Serve the web dashboard on the --listen TCP listener too (with --api-tls over mutual TLS): the same login "
            + "and session as --web, beside the tokens."))
    package var webOnListen = false

    @Option(help: ArgumentHelp(
        "The dashboard's files (index.html, dashboard.js, dashboard.css as scripts/build-web-assets writes them; "
            + "default: $CORRAL_WEB_ASSETS, else .build/web in a build tree, else PREFIX/share/corral/web beside PREFIX/bin/corrald, "
            + "else /usr/share/corral/web).",
        valueName: "DIR"))
    package var webAssets: String?

    @Flag(help: ArgumentHelp(
        "Mutual TLS on the TCP listener and towards peer daemons: this daemon presents STATE/tls/server-cert.pem "
            + "(server-key.pem) and requires a client certificate from STATE/tls/ca-cert.pem; as a migration source it "
            + "presents client-cert.pem (client-key.pem). The token is still required."))
    package var apiTls = false

    @Option(help: ArgumentHelp(
        "Join an etcd cluster (v3 API): its members' client URLs, comma-separated (http://, or https:// with "
            + "--cluster-tls); needs --host. A VM then starts only on the host that owns it.",
        valueName: "http://E1:2379,…"))
    package var cluster: String?

    @Option(help: ArgumentHelp(
        "Mutual TLS towards etcd (https:// URLs): DIR/ca-cert.pem is etcd's CA, DIR/client-cert.pem and "
            + "DIR/client-key.pem this host's client certificate.", valueName: "DIR"))
    package var clusterTls: String?

    @Option(help: ArgumentHelp("This host's name in the cluster (a-z, 0-9, '-'; unique among live hosts).",
                               valueName: "NAME"))
    package var host: String?

    @Option(help: ArgumentHelp("The address other hosts reach this daemon's API at (default: --listen).",
                               valueName: "HOST:PORT"), transform: { try HostPort(parsing: $0) })
    package var hostAddress: HostPort?

    @Option(help: ArgumentHelp("Refuse to start or grow VMs beyond RATIO online vCPUs per host CPU (e.g. 4).",
                               valueName: "RATIO"))
    package var cpuOvercommit: Double?

    @Option(help: ArgumentHelp("Refuse to start or grow VMs beyond RATIO guest memory per host MemTotal (e.g. 1.5).",
                               valueName: "RATIO"))
    package var memoryOvercommit: Double?

    @Option(help: ArgumentHelp("Seconds between looks at the host by the balloon and KSM policies.",
                               valueName: "SECONDS"))
    package var policyInterval: Double = 5

    @Option(help: ArgumentHelp(
        "Seconds an incoming migration waits for its source's commit before it is settled (removed if incomplete, "
            + "else kept paused with a problem).", valueName: "SECONDS"))
    package var incomingDeadline: Double = 600

    @Option(help: ArgumentHelp(
        "Who QEMU runs as: 'vm' (default: one unprivileged uid per VM from --uid-range, no capabilities) or 'root' "
            + "(unconfined; every guest escape owns the host).", valueName: "vm|root"))
    package var qemuUser: String = "vm"

    @Option(help: ArgumentHelp("The uids (each also the VM's gid) given to VMs' QEMUs, one per VM.",
                               valueName: "FIRST-LAST"))
    package var uidRange: String = "2000000-2065535"

    @Flag(help: "Do not move balloons automatically under host memory pressure.")
    package var noAutoBalloon = false

    @Flag(help: "Leave KSM (/sys/kernel/mm/ksm) alone instead of tuning it.")
    package var noKsm = false

    @Option(help: .hidden)
    package var hostRoot: String = ""

    package init() {}

    /// `FIRST-LAST` → (first, count); nil when malformed, below 1000 (system accounts) or reaching (uid_t)-1.
    package static func parseUIDRange(_ text: String) -> (first: UInt32, count: UInt32)? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let first = UInt32(parts[0]), let last = UInt32(parts[1]),
              first >= 1000, first <= last, last < UInt32.max else { return nil }
        return (first, last - first + 1)
    }

    package func validate() throws {
        for (flag, ratio) in [("--cpu-overcommit", cpuOvercommit), ("--memory-overcommit", memoryOvercommit)] {
            if let ratio, !(ratio.isFinite && ratio > 0) {
                throw ValidationError("\(flag) must be a ratio above 0 (e.g. 1.5), got \(ratio)")
            }
        }
        guard policyInterval.isFinite, policyInterval >= 0.1, policyInterval <= 3600 else {
            throw ValidationError("--policy-interval must be between 0.1 and 3600 seconds, got \(policyInterval)")
        }
        guard ["vm", "root"].contains(qemuUser) else {
            throw ValidationError("--qemu-user must be 'vm' or 'root', got '\(qemuUser)'")
        }
        guard let range = Self.parseUIDRange(uidRange) else {
            throw ValidationError("--uid-range must be FIRST-LAST with 1000 <= FIRST <= LAST < 4294967295, got '\(uidRange)'")
        }
        _ = range
        guard incomingDeadline.isFinite, incomingDeadline >= 1, incomingDeadline <= 86_400 else {
            throw ValidationError("--incoming-deadline must be between 1 and 86400 seconds, got \(incomingDeadline)")
        }
        if !hostRoot.isEmpty && !hostRoot.hasPrefix("/") {
            throw ValidationError("--host-root must be an absolute path, got \(hostRoot)")
        }
        if cluster != nil || host != nil || hostAddress != nil || clusterTls != nil {
            guard let cluster, !cluster.isEmpty else {
                throw ValidationError("--host, --host-address and --cluster-tls need --cluster")
            }
            guard let host else { throw ValidationError("--cluster needs --host NAME (this host's name in the cluster)") }
            let allowed = host.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
            guard allowed, (1...63).contains(host.utf8.count), !host.hasPrefix("-") else {
                throw ValidationError("--host must be 1-63 characters of a-z, 0-9 and '-', not starting with '-', got '\(host)'")
            }
        }
        if web != nil {
            guard tokenFile != nil else {
                throw ValidationError("--web needs --token-file: the dashboard's login is the admin token")
            }
        } else if webAssets != nil && !webOnListen {
            throw ValidationError("--web-assets only applies with --web or --web-on-listen")
        }
        if webOnListen && listen == nil {
            throw ValidationError("--web-on-listen needs --listen (and --token-file)")
        }
        if listen != nil {
            guard tokenFile != nil else { throw ValidationError("--listen needs --token-file") }
        } else if web != nil {
            if peerTokenFile != nil || metricsTokenFile != nil || apiTls {
                let flag = peerTokenFile != nil ? "--peer-token-file" : metricsTokenFile != nil ? "--metrics-token-file"
                    : "--api-tls"
                throw ValidationError("\(flag) only applies with --listen")
            }
        } else if tokenFile != nil || peerTokenFile != nil || metricsTokenFile != nil || apiTls {
            let flag = tokenFile != nil ? "--token-file" : peerTokenFile != nil ? "--peer-token-file"
                : metricsTokenFile != nil ? "--metrics-token-file" : "--api-tls"
            throw ValidationError("\(flag) only applies with --listen")
        }
    }

    /// The flags again as command-line arguments, with the socket and state folder resolved (so the daemon
    /// executable sees exactly what `corral daemon` decided, whatever its environment).
    package var arguments: [String] {
        var arguments = ["--state-dir", stateDir.resolved, "--socket", socket.resolved]
        if let listen { arguments += ["--listen", listen.description] }
        if let tokenFile { arguments += ["--token-file", tokenFile] }
        if let peerTokenFile { arguments += ["--peer-token-file", peerTokenFile] }
        if let metricsTokenFile { arguments += ["--metrics-token-file", metricsTokenFile] }
        if apiTls { arguments.append("--api-tls") }
        if let web { arguments += ["--web", web.description] }
        if webOnListen { arguments.append("--web-on-listen") }
        if let webAssets { arguments += ["--web-assets", webAssets] }
        if let cluster { arguments += ["--cluster", cluster] }
        if let clusterTls { arguments += ["--cluster-tls", clusterTls] }
        if let host { arguments += ["--host", host] }
        if let hostAddress { arguments += ["--host-address", hostAddress.description] }
        if let cpuOvercommit { arguments += ["--cpu-overcommit", "\(cpuOvercommit)"] }
        if let memoryOvercommit { arguments += ["--memory-overcommit", "\(memoryOvercommit)"] }
        arguments += ["--policy-interval", "\(policyInterval)"]
        arguments += ["--incoming-deadline", "\(incomingDeadline)"]
        arguments += ["--qemu-user", qemuUser, "--uid-range", uidRange]
        if noAutoBalloon { arguments.append("--no-auto-balloon") }
        if noKsm { arguments.append("--no-ksm") }
        if !hostRoot.isEmpty { arguments += ["--host-root", hostRoot] }
        return arguments
    }
}

/// `corral daemon`: checks its flags, then becomes `corrald` (exec, same pid), the daemon executable installed
/// next to `corral`. The split keeps the server (SwiftNIO, Hummingbird) out of the CLI, whose every
/// invocation would otherwise pay for loading it.
struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the corral daemon in the foreground: supervise VMs and serve the API.",
        discussion: """
            Serves the HTTP+JSON API on a Unix socket (mode 0600) and, with --listen, on TCP where every
            request must carry `Authorization: Bearer <token>` (the token is the first line of --token-file).
            SIGTERM or SIGINT stops listening and returns; running VMs keep running and a later daemon
            takes them over. Refuses to start when another daemon answers on the socket.

            Overcommit: with --cpu-overcommit / --memory-overcommit, starting a VM or plugging vCPUs or
            memory is refused when it would cross the ratio. Every --policy-interval seconds the balloon
            policy moves balloons under host memory pressure (--no-auto-balloon turns it off) and KSM is
            tuned to the memory pressure (--no-ksm leaves it alone).

            The daemon itself is the `corrald` executable next to `corral` (or in PATH); `corral daemon`
            runs it in its own place, with the same process id.
            """)

    @OptionGroup var flags: DaemonFlags

    func run() throws {
        try Helper.daemon.exec(flags.arguments)
    }
}
