import CorralModel
import Testing
@testable import Profiles

/// `display:`: the video device and the VNC display, and what is refused.
struct DisplayProfileTests {
    static func files(_ display: String) -> [String: String] {
        ["/vm/p.yaml": "name: p\nmemory: 1G\ndisplay: \(display)\n"]
    }

    @Test func defaultsAndChoices() throws {
        #expect(try #require(loadValid("/vm/p.yaml", files: Self.files("{}"), checkFiles: false)).display
            == Display(vga: .std, vnc: true))
        #expect(try #require(loadValid("/vm/p.yaml", files: Self.files("{ vga: virtio, vnc: false }"),
                                       checkFiles: false)).display == Display(vga: .virtio, vnc: false))
        #expect(try #require(loadValid("/vm/p.yaml", files: ["/vm/p.yaml": "name: p\nmemory: 1G\n"],
                                       checkFiles: false)).display == nil)
    }

    @Test func mistakesAreNamedWithTheirPlace() {
        #expect(diagnostics("/vm/p.yaml", files: Self.files("{ vga: cirrus }")) == [
            "/vm/p.yaml:3:17: display.vga: 'cirrus' is not one of std, virtio, bochs, none",
        ])
        #expect(diagnostics("/vm/p.yaml", files: Self.files("{ vga: none }")).first?
            .contains("display.vnc: a VNC display needs a video device") == true)
        #expect(diagnostics("/vm/p.yaml", files: Self.files("{ spice: true }")).first?
            .contains("display: unknown key 'spice'") == true)
    }
}
