import Foundation
import FuzzTargets
import Testing

/// Every seed and every crash reproducer in Fuzz/ through its target's body, without sanitizers: a reproducer
/// that fails again (a trap, or a property that no longer holds) fails here, in the normal test run.
@Suite struct FuzzRegressionTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let folder = fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    static func replay(_ kind: String, _ target: FuzzTarget) async throws {
        for file in inputs(kind, target) {
            let data = [UInt8](try Data(contentsOf: file))
            #expect(data.count <= target.maxLength, "\(file.lastPathComponent) is longer than -max_len")
            do {
                try await target.check(data)
            } catch {
                Issue.record("\(kind)/\(target.rawValue)/\(file.lastPathComponent): \(error)")
            }
        }
    }

    @Test(arguments: FuzzTarget.allCases) func seedCorpus(_ target: FuzzTarget) async throws {
        #expect(!Self.inputs("corpus", target).isEmpty, "Fuzz/corpus/\(target.rawValue) has seeds")
        try await Self.replay("corpus", target)
    }

    @Test(arguments: FuzzTarget.allCases) func crashReproducers(_ target: FuzzTarget) async throws {
        try await Self.replay("crashes", target)
    }
}
