import CorralModel

/// What a migration destination does when its source has not committed the incoming copy by the deadline, decided
/// from how far the incoming stream got (`query-migrate` on the destination's QEMU).
///
/// The source hands a guest over only after the stream completed, so a copy that never completed can go: the source
/// still has the guest. A completed (or switched-over postcopy) copy may be the only one left if the source's host
/// died after sending it: it is never removed automatically. A stream still moving gets more time.
public enum IncomingDeadline {
    public enum Decision: Sendable, Equatable {
        /// The guest never fully arrived: remove this copy.
        case remove
        /// The guest is here but uncommitted: keep it paused and tell the operator.
        case keep
        /// Still streaming: look again after another deadline.
        case wait
    }

    /// `status` nil with `queried` false: QEMU did not answer, so how far the stream got is unknown (kept: removing
    /// might lose the only copy). `status` nil with `queried` true: no migration ever reached QEMU.
    public static func decide(status: MigrationStatus?, queried: Bool) -> Decision {
        guard queried else { return .keep }
        switch status {
        case .completed?, .postcopyActive?, .postcopyPaused?, .postcopyRecover?:
            return .keep
        case .active?, .device?, .preSwitchover?, .waitUnplug?, .colo?:
            return .wait
        case .none?, .setup?, .cancelling?, .cancelled?, .failed?, nil:
            return .remove
        }
    }
}
