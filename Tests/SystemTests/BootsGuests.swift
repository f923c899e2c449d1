import Testing
import TestSupport

/// `.bootsGuests` on a suite: each of its tests holds one of the process's guest-boot slots while it runs
/// (TestSupport.GuestBootSlots), so the system suites do not boot every TCG guest at the same moment.
struct BootsGuests: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        try await GuestBootSlots.shared.run(function)
    }
}

extension Trait where Self == BootsGuests {
    static var bootsGuests: Self { Self() }
}
