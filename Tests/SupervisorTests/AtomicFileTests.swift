import Foundation
import CorralControl
import CorralCore
import Supervisor
import Testing

/// `FileOps.writeAtomically`: new content or old, never a torn file or a stray temporary.
@Suite struct AtomicFileTests {
    static func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/corral-atomic-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func text(_ path: String) -> String? {
        (try? FileOps.read(path))?.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func replacesEveryFileAndLeavesNoTemporaries() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileOps.writeAtomically(Array("old".utf8), to: dir + "/a.json", mode: 0o600)
        try FileOps.writeAtomically([(dir + "/a.json", Array("new a".utf8)), (dir + "/b.json", Array("new b".utf8))])
        #expect(Self.text(dir + "/a.json") == "new a")
        #expect(Self.text(dir + "/b.json") == "new b")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["a.json", "b.json"])
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/b.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func aFileThatCannotBeWrittenChangesNothing() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileOps.writeAtomically(Array("old".utf8), to: dir + "/a.json")
        #expect(throws: FileOps.Failure.self) {
            try FileOps.writeAtomically([(dir + "/a.json", Array("new".utf8)), (dir + "/missing/b.json", Array("b".utf8))])
        }
        #expect(Self.text(dir + "/a.json") == "old", "the first file keeps its content")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.json"], "no temporary file is left")
    }

    /// `stage` puts files in place without fsync; a later durable write syncs them along with its own files.
    @Test func stagedFilesAreInPlaceAndSyncedByALaterWrite() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileOps.writeAtomically(Array("old".utf8), to: dir + "/vm.json")
        try FileOps.stage([(dir + "/vm.json", Array("staged".utf8)), (dir + "/live.json", Array("live".utf8))])
        #expect(Self.text(dir + "/vm.json") == "staged")
        #expect(Self.text(dir + "/live.json") == "live")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["live.json", "vm.json"])

        try FileOps.writeAtomically([(dir + "/vm.json", Array("with pid".utf8))], alsoSyncing: [dir + "/live.json"])
        #expect(Self.text(dir + "/vm.json") == "with pid")
        #expect(Self.text(dir + "/live.json") == "live")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["live.json", "vm.json"])
    }

    /// A staged file that is gone by the time it should be synced fails the write before anything is replaced.
    @Test func syncingAMissingStagedFileChangesNothing() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileOps.writeAtomically(Array("old".utf8), to: dir + "/vm.json")
        #expect(throws: FileOps.Failure.self) {
            try FileOps.writeAtomically([(dir + "/vm.json", Array("new".utf8))], alsoSyncing: [dir + "/live.json"])
        }
        #expect(Self.text(dir + "/vm.json") == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["vm.json"])
    }
}
