import CorralModel
import JSON
import Profiles

/// The operations the daemon offers. The HTTP API is a thin mapping of these; the CLI
/// is a thin client of the API. Operations on one VM run one at a time (queued);
/// operations on different VMs run in parallel.
public protocol VMControl: Sendable {
    /// Validate a profile, create missing disk images, launch QEMU, wait for `running` (or `paused`).
    func up(_ request: UpRequest) async throws(ControlError) -> VMStatus
    func list() async -> [VMStatus]
    func status(_ name: String) async throws(ControlError) -> VMStatus
    /// Start a defined, stopped (or crashed) VM.
    func start(_ name: String) async throws(ControlError) -> VMStatus
    /// ACPI power button, then `quit` after `timeout`.
    func stop(_ name: String, timeout: Duration) async throws(ControlError) -> VMStatus
    /// SIGKILL the QEMU process.
    func kill(_ name: String) async throws(ControlError) -> VMStatus
    /// Forget a VM (its state folder); `force` stops it first when it runs. A VM with managed volumes needs
    /// `volumes` (delete them, or keep them in `STATE/volumes/NAME/`).
    func remove(_ name: String, force: Bool, volumes: VolumeDisposition?) async throws(ControlError)
    func pause(_ name: String) async throws(ControlError) -> VMStatus
    func resume(_ name: String) async throws(ControlError) -> VMStatus
    /// Raw QMP passthrough, recorded in the VM's transcript.
    func qmp(_ name: String, command: String, arguments: JSONObject?) async throws(ControlError) -> JSONValue
    /// The serial log file of a VM (the API tails it).
    func serialLog(_ name: String) async throws(ControlError) -> String
    /// A PNG of the VM's screen (`display:` in its profile), from QMP `screendump`.
    func screenshot(_ name: String) async throws(ControlError) -> [UInt8]
    /// Past events (oldest first, at most `history`), then, with `follow`, live ones until the stream is dropped;
    /// without `follow` the stream ends after the past ones. `vm` nil means every VM.
    func events(vm: String?, history: Int, follow: Bool) async -> AsyncStream<CorralEvent>
}

extension VMControl {
    /// Past events, then live ones.
    public func events(vm: String?, history: Int) async -> AsyncStream<CorralEvent> {
        await events(vm: vm, history: history, follow: true)
    }
}

/// Everything the daemon offers, as the API serves it. The daemon's `VMManager` is one; API tests use a fake.
public typealias DaemonControl = VMControl & HotplugControl & TuningControl & MigrationControl & NetworkControl
    & ConsoleControl & ClusterControl & MetricsControl

/// Managed networks (`corral network create|ls|show|rm`).
public protocol NetworkControl: Sendable {
    /// Creates the bridge, dnsmasq and (with NAT) the nftables table; refuses a name or subnet in use.
    func createNetwork(_ request: NetworkCreateRequest) async throws(ControlError) -> NetworkInfo
    func networks() async -> [NetworkInfo]
    func network(_ name: String) async throws(ControlError) -> NetworkInfo
    /// Removes everything the network is; refused while a VM has a NIC on it.
    func removeNetwork(_ name: String) async throws(ControlError)
}

extension VMControl {
    /// `remove` of a VM without managed volumes (refused, naming them, when it has some).
    public func remove(_ name: String, force: Bool) async throws(ControlError) {
        try await remove(name, force: force, volumes: nil)
    }
}
