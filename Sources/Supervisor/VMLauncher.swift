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
        RuntimeOptions(
            accel: accel, qmpSocket: paths.qmpSocket,
            serialLog: config.profile.serial == .log ? paths.serialLog : nil,
            pidFile: paths.pidFile, startPaused: startPaused, incoming: incoming)
    }
}

/// A QEMU process we started (or adopted) and the QMP connection to it.
public struct RunningVM: Sendable {
    public var name: String
    public var process: ProcessHandle
    public var qmp: QMPClient
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

/// Starts QEMU for a VM and connects QMP. Every step that leaves something behind
/// (folder files, disk images, a process, a socket) is undone when a later step fails.
public struct VMLauncher: Sendable {
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
            FileOps.remove(paths.qmpSocket)
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

        let argv = QEMUArgv.build(request.config, request.runtimeOptions)
        let outputStart = Self.fileSize(paths.qemuOutput)
        let process: ProcessHandle
        do {
            var spec = LaunchSpec(argv: argv, outputFile: paths.qemuOutput, detach: request.detach)
            spec.path = binary
            process = try ProcessLauncher.launch(spec)
        } catch {
            provisioner.rollback(created)
            throw fail(error.description)
        }
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
            FileOps.remove(paths.qmpSocket)
            FileOps.remove(paths.pidFile)
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
                    let client = try await QMPClient.connect(
                        socketPath: socket, connectTimeout: timeout, logger: logger,
                        transcript: transcript.map { writer in
                            { @Sendable (entry: QMPTranscriptEntry) -> Void in
                                writer.append(direction: entry.direction.rawValue, text: entry.text,
                                              at: Date(timeIntervalSince1970: entry.time))
                            }
                        })
                    return .connected(client)
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
