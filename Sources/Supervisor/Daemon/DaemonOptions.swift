import Cluster
import GuestAgent
import CorralCore
/// How the daemon runs: limits, policies and where it reads the host from.
public struct DaemonOptions: Sendable {
    /// Admission limits (`--cpu-overcommit`, `--memory-overcommit`).
    public var limits: Admission.Limits
    public var restartEngine: RestartPolicyEngine
    /// How long an unplug waits for the guest.
    public var unplugTimeout: Duration
    /// How often the balloon and KSM policies look at the host.
    public var policyInterval: Duration
    public var autoBalloon: Bool
    public var manageKSM: Bool
    /// Prefix for /proc and /sys reads and KSM writes (tests point it at a fake tree).
    public var hostRoot: String
    /// Where cgroup hierarchies are mounted under ("" = the real /sys/fs/cgroup); nil turns cgroups off.
    public var cgroupRoot: String?
    /// x509 certificates for `--tls` migrations (ca-cert.pem, server-*.pem, client-*.pem); nil = STATE/tls.
    public var tlsDirectory: String?
    /// How long an incoming migration may wait for its source's commit (`--incoming-deadline`). Past it, a copy
    /// that never received the whole guest is removed (the source still has it); a complete one is kept, paused,
    /// with a `problem` for the operator (the source may be gone for good, and it may be the only copy).
    public var incomingDeadline: Duration
    /// Who QEMU runs as: one unprivileged uid/gid per VM from a range (the default), or root (an explicit opt-out).
    public var qemuIdentity: QEMUIdentity
    /// This host in an etcd cluster (`--cluster`, `--host`): a VM starts only once this host owns it there.
    public var cluster: ClusterMember?
    /// In a cluster every host accepts the same peer token (`--peer-token-file`): a migration whose request names no
    /// token uses it.
    public var clusterPeerToken: String?
    /// Binds VMs' host PCI devices (tests give one over a fake kernel); nil: the real host's.
    public var hostDeviceClaims: HostDeviceClaims?
    /// How long `GET /metrics` waits for one VM's live figures (QMP, taps); a VM slower than that is reported
    /// without them, and the others are not held up.
    public var metricsTimeout: Duration = .seconds(2)
    /// The guest agent behind a VM's `agent.sock` (tests script one).
    public var guestAgent: @Sendable (_ socketPath: String) -> any GuestAgent = { GuestAgentClient(socketPath: $0) }

    public init(limits: Admission.Limits = .init(), restartEngine: RestartPolicyEngine = .init(),
                unplugTimeout: Duration = .seconds(20), policyInterval: Duration = .seconds(5),
                autoBalloon: Bool = true, manageKSM: Bool = false, hostRoot: String = "", cgroupRoot: String? = "", tlsDirectory: String? = nil,
                incomingDeadline: Duration = .seconds(600), qemuIdentity: QEMUIdentity = .perVM()) {
        self.qemuIdentity = qemuIdentity
        self.tlsDirectory = tlsDirectory
        self.incomingDeadline = incomingDeadline
        self.limits = limits
        self.restartEngine = restartEngine
        self.unplugTimeout = unplugTimeout
        self.policyInterval = policyInterval
        self.autoBalloon = autoBalloon
        self.manageKSM = manageKSM
        self.hostRoot = hostRoot
        self.cgroupRoot = cgroupRoot
    }
}

/// Who a VM's QEMU runs as.
public enum QEMUIdentity: Sendable, Equatable {
    /// Each VM gets the lowest free uid (used as its gid too) in `first ..< first + count`.
    case perVM(first: UInt32 = 2_000_000, count: UInt32 = 65_536)
    /// QEMU as root, as before isolation (`--qemu-user root`).
    case root

    /// The lowest uid of the range that no VM in `used` has; nil when the range is full (or for `.root`).
    public func allocate(excluding used: Set<UInt32>) -> UInt32? {
        guard case .perVM(let first, let count) = self else { return nil }
        var uid = first
        while uid < first &+ count {
            if !used.contains(uid) { return uid }
            uid += 1
        }
        return nil
    }

    public var summary: String {
        switch self {
        case .perVM(let first, let count): return "\(first)-\(first + count - 1)"
        case .root: return "root (unconfined)"
        }
    }
}
