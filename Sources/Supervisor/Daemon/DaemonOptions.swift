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
    /// The guest agent behind a VM's `agent.sock` (tests script one).
    public var guestAgent: @Sendable (_ socketPath: String) -> any GuestAgent = { GuestAgentClient(socketPath: $0) }

    public init(limits: Admission.Limits = .init(), restartEngine: RestartPolicyEngine = .init(),
                unplugTimeout: Duration = .seconds(20), policyInterval: Duration = .seconds(5),
                autoBalloon: Bool = true, manageKSM: Bool = false, hostRoot: String = "", cgroupRoot: String? = "", tlsDirectory: String? = nil) {
        self.tlsDirectory = tlsDirectory
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
