import CorralModel
import Foundation
import Testing

struct PCIAddressTests {
    @Test func parsesWhatSysfsWritesAndPrintsItBack() throws {
        let address = try PCIAddress(parsing: "0000:65:00.1")
        #expect(address == PCIAddress(domain: 0, bus: 0x65, slot: 0, function: 1))
        #expect(address.description == "0000:65:00.1")
        #expect(try PCIAddress(parsing: "65:1F.7").description == "0000:65:1f.7")
        #expect(try PCIAddress(parsing: "abcd:ff:1f.7").domain == 0xabcd)
        #expect(address.withFunction(0).description == "0000:65:00.0")
        #expect(try PCIAddress(parsing: "0000:65:00.0") < address)
        let json = try JSONEncoder().encode([address])
        #expect(String(decoding: json, as: UTF8.self) == #"["0000:65:00.1"]"#)
        #expect(try JSONDecoder().decode([PCIAddress].self, from: json) == [address])
    }

    @Test(arguments: ["", "65", "0000:65:00", "0000:65:20.0", "0000:65:00.8", "0:65:00.0", "0000:6:00.0",
                      "0000:65:00.0.1", "zzzz:65:00.0", "0000:65:00.0\u{0}", " 0000:65:00.0", "+000:65:00.0"])
    func refusesAnythingElse(_ text: String) {
        #expect(throws: PCIAddress.ParseError.self) { _ = try PCIAddress(parsing: text) }
    }
}
