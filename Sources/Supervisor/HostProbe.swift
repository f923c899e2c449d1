import CorralModel
import Profiles
import QEMUCommand

#if canImport(Glibc)
import Glibc
#endif

/// Reads facts about the host. Each probe is tiny and replaceable in tests.
public enum HostProbe {
    /// `auto` means KVM when /dev/kvm opens read-write, else TCG.
    public static func resolve(_ accel: Accel, kvmDevice: String = "/dev/kvm") -> ResolvedAccel {
        switch accel {
        case .kvm: return .kvm
        case .tcg: return .tcg
        case .auto: return kvmUsable(kvmDevice) ? .kvm : .tcg
        }
    }

    /// vhost-net is there to be used (taps corral makes then get it unless the profile says `vhost: false`).
    public static func vhostNetUsable(_ device: String = "/dev/vhost-net") -> Bool {
        kvmUsable(device)
    }

    public static func kvmUsable(_ device: String = "/dev/kvm") -> Bool {
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// Finds `name` in PATH (or checks an absolute path is executable).
    public static func findExecutable(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
