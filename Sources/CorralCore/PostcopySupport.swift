/// Whether a migration destination can take a postcopy migration: its incoming QEMU registers the guest's memory
/// with userfaultfd, which QEMU 7.2 asks for with the plain system call. For an unprivileged QEMU the kernel allows
/// that only with `vm.unprivileged_userfaultfd = 1`.
public enum PostcopySupport {
    public static let sysctlPath = "/proc/sys/vm/unprivileged_userfaultfd"

    /// nil when postcopy can work; otherwise the refusal to show. `sysctl` is the text of
    /// /proc/sys/vm/unprivileged_userfaultfd (nil when the file is missing: kernels without the switch allow it).
    public static func refusal(unprivilegedQEMU: Bool, sysctl: String?) -> String? {
        guard unprivilegedQEMU, let value = sysctl?.filter({ !$0.isWhitespace }), value == "0" else {
            return nil
        }
        return "--postcopy: this host's QEMU runs unprivileged and the kernel gives userfaultfd only to privileged "
            + "processes (vm.unprivileged_userfaultfd = 0); set `sysctl vm.unprivileged_userfaultfd=1` here, or "
            + "migrate without --postcopy"
    }
}
