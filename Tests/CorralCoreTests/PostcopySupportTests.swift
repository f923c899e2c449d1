import CorralCore
import Testing

struct PostcopySupportTests {
    @Test func anUnprivilegedQEMUNeedsTheSysctl() {
        let refusal = PostcopySupport.refusal(unprivilegedQEMU: true, sysctl: "0\n")
        #expect(refusal?.contains("sysctl vm.unprivileged_userfaultfd=1") == true)
        #expect(PostcopySupport.refusal(unprivilegedQEMU: true, sysctl: "1\n") == nil)
        #expect(PostcopySupport.refusal(unprivilegedQEMU: true, sysctl: nil) == nil, "no switch: allowed")
    }

    @Test func aRootQEMUAlwaysMay() {
        #expect(PostcopySupport.refusal(unprivilegedQEMU: false, sysctl: "0") == nil)
    }
}
