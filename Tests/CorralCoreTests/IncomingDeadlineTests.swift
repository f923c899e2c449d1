import CorralCore
import CorralModel
import Testing

/// The destination's commit deadline: remove only what the source provably still has.
struct IncomingDeadlineTests {
    @Test func aStreamThatNeverCompletedIsRemoved() {
        for status: MigrationStatus? in [nil, .none, .setup, .failed, .cancelled, .cancelling] {
            #expect(IncomingDeadline.decide(status: status, queried: true) == .remove, "\(String(describing: status))")
        }
    }

    @Test func aCompleteOrSwitchedOverCopyIsKept() {
        for status: MigrationStatus in [.completed, .postcopyActive, .postcopyPaused, .postcopyRecover] {
            #expect(IncomingDeadline.decide(status: status, queried: true) == .keep, "\(status)")
        }
    }

    @Test func aStreamStillMovingGetsMoreTime() {
        for status: MigrationStatus in [.active, .device, .preSwitchover, .waitUnplug, .colo] {
            #expect(IncomingDeadline.decide(status: status, queried: true) == .wait, "\(status)")
        }
    }

    @Test func anUnansweredQueryNeverRemoves() {
        // QEMU did not say how far it got: it may hold the only copy.
        #expect(IncomingDeadline.decide(status: nil, queried: false) == .keep)
    }
}
