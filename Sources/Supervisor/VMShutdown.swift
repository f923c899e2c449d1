import QMP

/// How a VM was brought down.
public enum ShutdownMethod: String, Sendable {
    /// The guest powered off after an ACPI power-button press.
    case powerdown
    /// QMP `quit` after the guest ignored the power button.
    case quit
    /// SIGTERM/SIGKILL because QMP did not help.
    case killed
    /// QEMU was already gone.
    case alreadyExited = "already-exited"
}

public enum VMShutdown {
    /// ACPI power button, wait up to `timeout` for QEMU to exit; then QMP `quit`; then signals.
    /// Always returns with the process gone.
    public static func stop(_ vm: RunningVM, timeout: Duration) async -> (ExitStatus, ShutdownMethod) {
        if let status = vm.process.exitStatus { return (status, .alreadyExited) }
        if (try? await vm.qmp.systemPowerdown()) != nil,
            let status = await vm.process.waitForExit(timeout: timeout)
        {
            return (status, .powerdown)
        }
        return await forceStop(vm)
    }

    /// QMP `quit`, then SIGTERM, then SIGKILL.
    public static func forceStop(_ vm: RunningVM) async -> (ExitStatus, ShutdownMethod) {
        if let status = vm.process.exitStatus { return (status, .alreadyExited) }
        if (try? await vm.qmp.quit(timeout: .seconds(3))) != nil,
            let status = await vm.process.waitForExit(timeout: .seconds(5))
        {
            return (status, .quit)
        }
        return (await vm.process.terminate(grace: .seconds(3)), .killed)
    }
}
