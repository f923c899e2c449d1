import CorralModel

/// What `GET /metrics` reads (docs/metrics.md). The daemon collects the live figures of all VMs at once, each VM
/// within its own time limit: a VM whose QEMU does not answer in time is reported with what corral knows without
/// asking it (`complete` false), and never holds up the others.
public protocol MetricsControl: Sendable {
    func metricsSnapshot() async -> MetricsSnapshot
}
