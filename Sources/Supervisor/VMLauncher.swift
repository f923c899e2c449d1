import CorralModel
import Foundation
import JSON
import Logging
import Profiles
import QEMUCommand
import QMP

/// What to start: the VM's configuration and the runtime choices made for this start.
public struct StartRequest: Sendable {
    public var config: LiveConfig
    public var accel: ResolvedAccel
    public var paths: VMPaths
    public var startPaused: Bool
    public var incoming: String?
    /// Start QEMU in its own session so it outlives us (daemon) and ignores our terminal's Ctrl-C.
    public var detach: Bool
    /// Called with QEMU's pid and spawn time (seconds since the epoch) as soon as it is spawned, concurrently with
    /// the QMP connect: cgroup placement, recording the pid. `start` returns only after it has.
    public var onSpawn: (@Sendable (_ pid: Int32, _ time: Double) -> Void)?
    /// The caller has just written `live.json` with exactly `config` (`corral up` stages it): no need to compare.
    public var liveConfigWritten = false
    /// Run QEMU unprivileged: it gets descriptors instead of paths (`HandOverPlan`); nil runs it as root.
    public var confinement: Confinement?
    /// Give the disks to the VM's uid now; a migration destination waits for the commit (the source still runs
    /// with them).
    public var claimDisks = true
    /// The host functions of each profile host device (`HostDeviceClaims.addresses`).
    public var hostDevices: [String: [PCIAddress]] = [:]
    /// The cloud-init seed built for this start (profiles with `cloudInit`): QEMU gets it as one more read-only
    /// disk; live.json keeps the configuration without it.
    public var seedImage: String?

    public init(config: LiveConfig, accel: ResolvedAccel, paths: VMPaths, startPaused: Bool = false,
                incoming: String? = nil, detach: Bool = true) {
        self.config = config
        self.accel = accel
        self.paths = paths
        self.startPaused = startPaused
        self.incoming = incoming
        self.detach = detach
    }

    public var runtimeOptions: RuntimeOptions {
        var options = RuntimeOptions(
            accel: accel, qmpSocket: paths.qmpSocket,
            serialLog: config.profile.serial == .log ? paths.serialLog : nil,
            pidFile: paths.pidFile, startPaused: startPaused, incoming: incoming,
            vhostNet: HostProbe.vhostNetUsable(), agentSocket: paths.agentSocket)
        options.hostDevices = hostDevices
        return options
    }
}

/// A QEMU process we started (or adopted) and the QMP connection to it.
public struct RunningVM: Sendable {
    public var name: String
    public var process: any QEMUProcess
    public var qmp: any QMPMonitor
    public var paths: VMPaths
    public var accel: ResolvedAccel
    public var argv: [String]
    /// When QEMU was spawned (seconds since the epoch); for an adopted QEMU, when it was recorded as started.
    public var startedAt: Double
}

public struct StartError: Error, CustomStringConvertible {
    public var vm: String
    public var reason: String
    /// QEMU's own output when it failed; shown to the user verbatim.
    public var qemuOutput: [String]

    public var description: String {
        var text = "cannot start \(vm): \(reason)"
        if !qemuOutput.isEmpty {
            text += "\n" + qemuOutput.map { "  qemu: \($0)" }.joined(separator: "\n")
        }
        return text
    }
}

/// What the daemon needs to get a QEMU running: start one, or take over one that outlived the previous daemon.
/// `VMLauncher` is the real one; unit tests script QEMU with a fake process and the scripted QMP monitor.
public protocol VMLaunching: Sendable {
    func start(_ request: StartRequest) async throws(StartError) -> RunningVM
    /// The QEMU of `paths` that survived a daemon restart, found by `recordedPid` or else by QEMU's own pid file;
    /// nil when there is none, it is not this VM's QEMU, or its QMP does not answer.
    func reattach(name: String, recordedPid: Int32?, paths: VMPaths, accel: ResolvedAccel,
                  recordedStart: Double?) async -> RunningVM?
    /// Creates missing disk images (hotplugged disks, a migration destination's copies) and removes them again.
    var provisioner: DiskProvisioner { get }
}

/// Starts QEMU for a VM and connects QMP. Every step that leaves something behind
/// (folder files, disk images, a process, a socket) is undone when a later step fails.
public struct VMLauncher: VMLaunching {
    public var provisioner: DiskProvisioner
    public var connectTimeout: Duration
    public var logger: Logger

    public init(provisioner: DiskProvisioner = DiskProvisioner(), connectTimeout: Duration = .seconds(15),
                logger: Logger = Logger(label: "corral.launcher")) {
        self.provisioner = provisioner
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    public func start(_ request: StartRequest) async throws(StartError) -> RunningVM {
        let profile = request.config.profile
        let paths = request.paths
        func fail(_ reason: String, output: [String] = []) -> StartError {
            StartError(vm: profile.name, reason: reason, qemuOutput: output)
        }
        if let problem = paths.socketPathProblem { throw fail(problem) }
        guard let binary = HostProbe.findExecutable(profile.qemu.binary) else {
            throw fail("QEMU binary '\(profile.qemu.binary)' not found (qemu.binary); install qemu-system-x86")
        }
        do {
            try FileOps.makeFolder(paths.folder)
            paths.removeSockets()
            FileOps.remove(paths.pidFile)
            // The daemon usually wrote this very file a moment ago: skip the second atomic write (two fsyncs).
            if !request.liveConfigWritten {
                let live = Array(try JSONEncoder.corral.encode(request.config))
                if (try? FileOps.read(paths.liveConfig)) ?? nil != live {
                    try FileOps.writeAtomically(live, to: paths.liveConfig)
                }
            }
        } catch {
            throw fail("\(error)")
        }

        let created: [String]
        do {
            created = try await provisioner.createMissing(profile.disks)
        } catch {
            throw fail(error.description)
        }

        var runtime = request.runtimeOptions
        // What QEMU runs with: the stored configuration plus this start's cloud-init seed.
        let config = request.config.withSeed(request.seedImage)
        let tapEntries = TapPlan.entries(config, vhostAvailable: runtime.vhostNet)
        // An unprivileged QEMU gets descriptors the daemon opens: sockets, serial log, disks, kernel, initrd.
        var handOver = HandOverFiles()
        if let confinement = request.confinement {
            let lastTap = tapEntries.flatMap { $0.fds.taps + $0.fds.vhosts }.max() ?? (TapPlan.firstFD - 1)
            let plan = HandOverPlan.make(config, serialLog: runtime.serialLog != nil, firstFD: lastTap + 1)
            runtime.handOver = plan
            runtime.pidFile = nil
            do {
                handOver = try HandOverFiles.open(plan, config: config, paths: paths, uid: confinement.uid,
                                                  claimDisks: request.claimDisks)
            } catch {
                provisioner.rollback(created)
                throw fail(error.description)
            }
        }
        let argv = QEMUArgv.build(config, runtime)
        // The taps the argv names by descriptor: made and opened here, handed to QEMU, our copies closed at once.
        let taps: OpenedTaps
        do {
            taps = try TapDevices.open(tapEntries)
        } catch {
            handOver.undo(vm: profile.name, paths: paths)
            provisioner.rollback(created)
            throw fail(error.description)
        }
        let outputStart = Self.fileSize(paths.qemuOutput)
        let process: ProcessHandle
        do {
            defer { taps.closeAll() }
            var spec = LaunchSpec(argv: argv, outputFile: paths.qemuOutput, detach: request.detach)
            spec.path = binary
            spec.passing = taps.descriptors.merging(handOver.descriptors) { tap, _ in tap }
            spec.confinement = request.confinement
            // A QEMU binary (or wrapper) that lives in one of those folders must stay reachable.
            spec.confinement?.hiddenPaths.removeAll { binary.hasPrefix($0 + "/") }
            process = try ProcessLauncher.launch(spec)
        } catch {
            handOver.undo(vm: profile.name, paths: paths)
            TapDevices.remove(taps.macvtaps)
            provisioner.rollback(created)
            throw fail(error.description)
        }
        handOver.closeAll()
        // QEMU writes no pid file when it cannot reach the folder: the daemon records the pid it spawned.
        if request.confinement != nil { try? FileOps.writeAtomically(Array("\(process.pid)\n".utf8), to: paths.pidFile) }
        let spawnedAt = Date().timeIntervalSince1970
        logger.info("qemu started", metadata: ["vm": "\(profile.name)", "pid": "\(process.pid)"])

        let transcript = TranscriptWriter(path: paths.transcript)
        let onSpawn = request.onSpawn
        async let placed: Void = onSpawn?(process.pid, spawnedAt) ?? ()
        let outcome = await connect(paths.qmpSocket, racing: process, transcript: transcript)
        await placed
        switch outcome {
        case .connected(let qmp):
            return RunningVM(name: profile.name, process: process, qmp: qmp, paths: paths,
                             accel: request.accel, argv: argv, startedAt: spawnedAt)
        case .failed(let reason):
            let status = await process.terminate(grace: .seconds(2))
            paths.removeSockets()
            FileOps.remove(paths.pidFile)
            for file in handOver.claimed { FileClaims.release(file, vm: profile.name) }
            TapDevices.remove(taps.macvtaps)
            provisioner.rollback(created)
            let output = Self.outputLines(paths.qemuOutput, from: outputStart)
            let why = output.isEmpty ? reason : "QEMU \(status) during start"
            throw fail(why, output: output)
        }
    }

    private enum ConnectOutcome: Sendable {
        case connected(QMPClient)
        case failed(String)
    }

    /// Connects to the QMP socket, giving up as soon as QEMU exits (a bad argument makes it exit at once).
    private func connect(_ socket: String, racing process: ProcessHandle,
                         transcript: TranscriptWriter?) async -> ConnectOutcome {
        let timeout = connectTimeout
        let logger = logger
        return await withTaskGroup(of: ConnectOutcome?.self) { group in
            group.addTask {
                do {
                    return .connected(try await Self.connectQMP(socket, timeout: timeout, logger: logger,
                                                                transcript: transcript))
                } catch {
                    return .failed("\(error)")
                }
            }
            group.addTask {
                guard let status = await process.waitForExitOrCancel() else { return nil }
                return .failed("QEMU \(status) before its QMP socket answered")
            }
            var first: ConnectOutcome = .failed("QMP connect did not finish")
            while let next = await group.next() {
                if let next {
                    first = next
                    break
                }
            }
            group.cancelAll()
            if case .failed = first {
                // The connect task may still hand back a client; close it.
                while let other = await group.next() {
                    if case .connected(let client)? = other { await client.close() }
                }
            }
            return first
        }
    }

    /// Connects QMP with every message written to the VM's transcript.
    static func connectQMP(_ socket: String, timeout: Duration, logger: Logger,
                           transcript: TranscriptWriter?) async throws(QMPError) -> QMPClient {
        try await QMPClient.connect(
            socketPath: socket, connectTimeout: timeout, logger: logger,
            transcript: transcript.map { writer in
                { @Sendable (entry: QMPTranscriptEntry) -> Void in
                    writer.append(direction: entry.direction.rawValue, text: entry.text,
                                  at: Date(timeIntervalSince1970: entry.time))
                }
            })
    }

    /// Takes over a QEMU that survived a daemon restart. The pid comes from `vm.json`, or else from QEMU's own pid
    /// file: a daemon that died between spawning QEMU and the spawn hook's durable write of its pid left a running
    /// QEMU that only the pid file names. It must be alive and have this VM's QMP socket on its command line.
    public func reattach(name: String, recordedPid: Int32?, paths: VMPaths, accel: ResolvedAccel,
                         recordedStart: Double?) async -> RunningVM? {
        guard let pid = recordedPid ?? Self.pidFromFile(paths.pidFile), let process = ProcessHandle.adopt(pid: pid),
            Self.commandLine(of: pid).contains(paths.qmpSocket),
            let qmp = try? await Self.connectQMP(paths.qmpSocket, timeout: .seconds(5), logger: logger,
                                                 transcript: TranscriptWriter(path: paths.transcript))
        else { return nil }
        let startedAt = recordedStart ?? Self.modificationTime(paths.pidFile) ?? Date().timeIntervalSince1970
        return RunningVM(name: name, process: process, qmp: qmp, paths: paths, accel: accel, argv: [],
                         startedAt: startedAt)
    }

    /// The pid QEMU wrote with `-pidfile`; nil when there is none.
    static func pidFromFile(_ path: String) -> Int32? {
        guard let text = (try? FileOps.readText(path)) ?? nil else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Seconds since 1970 of a file's last change; nil when it does not exist.
    static func modificationTime(_ path: String) -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    static func commandLine(of pid: Int32) -> String {
        guard let bytes = (try? FileOps.read("/proc/\(pid)/cmdline")) ?? nil else { return "" }
        return String(decoding: bytes.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    static func fileSize(_ path: String) -> Int {
        (try? FileOps.read(path))??.count ?? 0
    }

    static func outputLines(_ path: String, from offset: Int) -> [String] {
        guard let bytes = (try? FileOps.read(path)) ?? nil, bytes.count > offset else { return [] }
        return String(decoding: bytes[offset...], as: UTF8.self)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }.suffix(20).map { $0 }
    }
}

extension JSONEncoder {
    /// Stable, readable JSON for state files.
    public static var corral: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
