import Foundation
import QEMUCommand
import Testing

@Suite("stable ids")
struct StableIDTests {
    @Test("stableUUID is deterministic, RFC 4122 version 5, and differs per name")
    func uuid() throws {
        let names = ["web", "db", "web-1", "a", "tiny-test", ""]
        let uuids = names.map(QEMUArgv.stableUUID(for:))
        #expect(uuids == names.map(QEMUArgv.stableUUID(for:)))
        #expect(Set(uuids).count == names.count)
        for text in uuids {
            let parsed = try #require(UUID(uuidString: text), "\(text) is not a UUID")
            #expect(parsed.uuidString.lowercased() == text)  // canonical lower-case 8-4-4-4-12
            let bytes = withUnsafeBytes(of: parsed.uuid) { Array($0) }
            #expect(bytes[6] >> 4 == 5, "version nibble of \(text)")
            #expect(bytes[8] >> 6 == 0b10, "variant bits of \(text)")
        }
    }

    @Test("stableUUID and stableMAC are pinned (stored state and golden files depend on them)")
    func pinned() {
        // Expected values computed independently with Python: uuid.uuid5(UUID('a52922f0-b470-4afa-9131-f596cf0e4a7b'), name)
        // and hashlib.sha1(b'corral-mac\0web\0lan').
        #expect(QEMUArgv.stableUUID(for: "web") == "69d2ad93-d523-57b4-906c-afde2ce24485")
        #expect(QEMUArgv.stableUUID(for: "db") == "66a4298e-ee7b-59f6-b71c-9059068a56ce")
        #expect(QEMUArgv.stableUUID(for: "tiny-test") == "af2d8de2-15ba-5e5f-a538-8ae82f42c76a")
        #expect(DeviceProps.stableMAC(vmName: "web", nicID: "lan") == "52:54:00:6a:3d:bd")
    }

    @Test("stableMAC: 52:54:00 prefix, lower-case hex, deterministic, distinct per VM and NIC")
    func mac() {
        let pairs = [("web", "lan"), ("web", "wan"), ("db", "lan"), ("webl", "an"), ("we", "blan")]
        let macs = pairs.map { DeviceProps.stableMAC(vmName: $0.0, nicID: $0.1) }
        #expect(macs == pairs.map { DeviceProps.stableMAC(vmName: $0.0, nicID: $0.1) })
        #expect(Set(macs).count == pairs.count)
        let shape = #/^52:54:00(:[0-9a-f]{2}){3}$/#
        for mac in macs { #expect(mac.wholeMatch(of: shape) != nil, "\(mac)") }
    }
}
