import CorralModel
import JSON

/// Overcommit operations (`corral balloon|stats|set|host`).
public protocol TuningControl: Sendable {
    /// Sets the balloon target (e.g. "384M"); turns the automatic policy off for this VM.
    func balloon(_ name: String, size: String) async throws(ControlError) -> VMStatus
    /// The guest's memory statistics (virtio-balloon stats) and the balloon's size.
    func stats(_ name: String) async throws(ControlError) -> GuestStats
    /// Changes tuning live: cgroup weight/quota, balloon min, memory shares, automatic ballooning.
    func setTuning(_ name: String, _ request: TuningRequest) async throws(ControlError) -> VMStatus
    /// Host capacity, what is committed, the ratios and limits, KSM and balloon totals, per-VM rows.
    func host() async -> HostReport
}
