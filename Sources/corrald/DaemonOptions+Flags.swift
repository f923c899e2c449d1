import CorralCLI
import Supervisor

extension DaemonFlags {
    /// What the flags ask of the supervisor. The daemon manages KSM unless told not to.
    var options: DaemonOptions {
        var options = DaemonOptions(manageKSM: !noKsm)
        options.limits = .init(cpuRatio: cpuOvercommit, memoryRatio: memoryOvercommit)
        options.policyInterval = .milliseconds(Int64((policyInterval * 1000).rounded()))
        options.autoBalloon = !noAutoBalloon
        options.hostRoot = hostRoot
        options.incomingDeadline = .milliseconds(Int64((incomingDeadline * 1000).rounded()))
        if qemuUser == "root" {
            options.qemuIdentity = .root
        } else if let range = Self.parseUIDRange(uidRange) {
            options.qemuIdentity = .perVM(first: range.first, count: range.count)
        }
        return options
    }
}
