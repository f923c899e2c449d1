import CorralModel
import Import
import Profiles
import Testing

/// A cheap, deterministic stand-in for the fuzzer in every test run: the fixtures, mutated a few thousand times
/// (bytes flipped, cut, repeated, tokens spliced in), through the parser and both importers. Whatever comes out must
/// hold the importers' promises: a valid profile whose YAML loads back the same, or an error with a position.
@Suite struct MutationTests {
    static let fixtures = ["plain-virtio.xml", "uefi-q35.xml", "old-i440fx.xml", "units.xml", "vmware-web01.ovf",
                           "virtualbox-debian12.ovf"]
    static let tokens = ["<", ">", "/>", "</domain>", "&amp;", "&#x41;", "<!--", "-->", "<![CDATA[", "]]>", "'", "\"",
                         "<disk type='file'><source file='/x'/></disk>", "<interface type='user'/>", "unit='GB'",
                         "<rasd:ResourceType>10</rasd:ResourceType>", "<Item>", "</Item>", "xmlns:p='u'", "p:",
                         "99999999999999999999", "-1", "0x10", "<vcpu>0</vcpu>", "\u{0}", "\u{FFFE}", "é"]

    /// xorshift64*: the same sequence on every run.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return Int((state &* 2_685_821_657_736_338_717) >> 33) % max(1, bound)
        }
    }

    static func mutate(_ bytes: [UInt8], _ random: inout Generator) -> [UInt8] {
        var out = bytes
        for _ in 0...random.next(4) {
            guard !out.isEmpty else { break }
            let at = random.next(out.count)
            switch random.next(5) {
            case 0: out[at] ^= UInt8(1 << random.next(8))
            case 1: out.removeSubrange(at..<min(out.count, at + 1 + random.next(40)))
            case 2: out.insert(contentsOf: Array(tokens[random.next(tokens.count)].utf8), at: at)
            case 3:
                let end = min(out.count, at + 1 + random.next(200))
                out.insert(contentsOf: out[at..<end], at: end)
            default: out = Array(out.prefix(at))
            }
        }
        return out
    }

    @Test(arguments: fixtures)
    func mutatedDocumentsKeepThePromises(_ name: String) throws {
        let original = Array(try Fixtures.text(name).utf8)
        var random = Generator(state: 0x9E37_79B9_7F4A_7C15 ^ UInt64(original.count))
        var imported = 0
        for _ in 0..<400 {
            let bytes = Self.mutate(original, &random)
            if case .failure(let error) = Result(catching: { () throws(XMLError) in try XMLDocument.parse(bytes: bytes) }) {
                #expect(error.line >= 1 && error.column >= 1 && !error.message.isEmpty, "\(error)")
            }
            guard let text = String(validating: bytes, as: UTF8.self) else { continue }
            for compat in [false, true] {
                let options = ImportOptions(compat: compat)
                for result in [Result { () throws(ImportError) in try LibvirtImport.importDomain(text, options: options) },
                               Result { () throws(ImportError) in
                                   try OVFImport.importEnvelope(text, options: options, diskDirectory: "/import")
                               }] {
                    switch result {
                    case .failure(let error):
                        #expect(!error.message.isEmpty && (error.path.isEmpty || error.path.hasPrefix("/")), "\(error)")
                    case .success(let result):
                        imported += 1
                        #expect(result.profile.problems().isEmpty, "\(result.profile.problems())")
                        let yaml = ProfileYAMLWriter.render(result.profile, header: result.notes.map(\.description))
                        do throws(ProfileErrors) {
                            let loaded = try loadYAML(yaml)
                            #expect(loaded == result.profile, "\(yaml)")
                        } catch {
                            Issue.record("does not load back:\n\(error)\n\(yaml)")
                        }
                    }
                }
            }
        }
        // The mutations leave enough documents importable for the round trip to be tested at all.
        #expect(imported > 20, "only \(imported) mutated documents imported")
    }
}
