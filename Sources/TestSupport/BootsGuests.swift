import Testing

/// `.bootsGuests` on a suite: each of its tests holds one of the process's guest-boot slots while it runs
/// (`GuestBootSlots.shared`), so the system suites do not boot every TCG guest at the same moment.
public struct BootsGuests: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        try await GuestBootSlots.shared.run(function)
    }
}

extension Trait where Self == BootsGuests {
    public static var bootsGuests: Self { Self() }
}
