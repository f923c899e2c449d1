import Foundation
import Profiles
import Testing

/// Hostile profiles are refused fast, by name and line, before they cost the host anything.
/// (Unguarded, the billion laughs takes minutes and gigabytes: the time limit turns a regression into a failure.)
@Suite(.timeLimit(.minutes(1))) struct LimitsTests {
    func diagnostics(_ text: String, extra: [String: String] = [:]) -> [String] {
        var files = extra
        files["/vm/p.yaml"] = text
        do {
            _ = try ProfileLoader(checkFiles: false, source: InMemorySource(files: files, currentDirectory: "/vm"))
                .load(path: "/vm/p.yaml")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    /// Eight levels of ten aliases: 10⁸ values if expanded. Refused at the line whose aliases cross the budget.
    @Test func aBillionLaughsIsRefusedNamingTheLineOfTheAlias() {
        var text = "name: laughs\nmemory: 1G\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...8 {
            let refs = Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ")
            text += "l\(level): &l\(level) [\(refs)]\n"
        }
        let result = diagnostics(text)
        #expect(result.count == 1)
        #expect(result.first?.hasPrefix("/vm/p.yaml:7:") == true, "the line of l4, whose aliases cross 20000: \(result)")
        #expect(result.first?.contains("the profile expands to more than 20000 values (YAML aliases copy what they name)") == true)
    }

    @Test func aFewAliasesAreFine() {
        let text = """
            name: fine
            memory: 1G
            disks:
              - &disk { id: a, file: /img/a.qcow2, size: 1G }
              - { id: b, file: /img/b.qcow2, size: 1G }
            """
        #expect(diagnostics(text) == [])
    }

    @Test func deepNestingIsRefusedBeforeTheYAMLLibraryRecursesIntoIt() {
        let text = "name: deep\nmemory: 1G\nx: " + String(repeating: "[", count: 100_000) + "\n"
        #expect(diagnostics(text) == ["/vm/p.yaml:3:36: nested more than 32 levels deep; a profile is at most 32"])
    }

    @Test func aLongListIsRefused() {
        let text = "name: long\nmemory: 1G\nnics: [" + Array(repeating: "{}", count: 1001).joined(separator: ", ") + "]\n"
        #expect(diagnostics(text) == ["/vm/p.yaml:3:1: a list of 1001 items; lists in a profile have at most 1000"])
    }

    @Test func aHugeFileIsRefusedWithoutParsing() {
        let text = "name: big\nmemory: 1G\n# " + String(repeating: "x", count: ProfileLimits.fileBytes) + "\n"
        #expect(diagnostics(text) == ["/vm/p.yaml: the profile is 1048600 bytes; a profile is at most 1024 KiB"])
    }

    @Test func anExtendsChainLongerThanEightIsRefused() {
        var files: [String: String] = [:]
        for index in 1...9 { files["/vm/p\(index).yaml"] = "extends: p\(index + 1).yaml\n" }
        files["/vm/p10.yaml"] = "name: chain\nmemory: 1G\n"
        let result = diagnostics("extends: p1.yaml\n", extra: files)
        #expect(result == ["/vm/p7.yaml:1:10: extends: more than 8 files in the extends chain; a profile extends at most 7 others"])
    }
}
