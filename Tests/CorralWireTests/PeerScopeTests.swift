import CorralWire
import Testing

/// The peer token's routes: exactly what a migration needs from its destination.
struct PeerScopeTests {
    @Test func theMigrationRoutesAndAVMsStateAreOpen() {
        #expect(PeerScope.allows(method: "POST", path: "/v1/migrations/incoming"))
        #expect(PeerScope.allows(method: "POST", path: "/v1/migrations/incoming/web/commit"))
        #expect(PeerScope.allows(method: "POST", path: "/v1/migrations/incoming/web/abort"))
        #expect(PeerScope.allows(method: "GET", path: "/v1/vms/web"))
        #expect(PeerScope.allows(method: "GET", path: "/v1/health"))
    }

    @Test func everythingElseIsClosed() {
        let closed: [(String, String)] = [
            ("GET", "/v1/vms"), ("POST", "/v1/vms"), ("DELETE", "/v1/vms/web"), ("POST", "/v1/vms/web/qmp"),
            ("GET", "/v1/vms/web/console"), ("POST", "/v1/vms/web/start"), ("POST", "/v1/vms/web/kill"),
            ("POST", "/v1/vms/web/migrate"), ("GET", "/v1/events"), ("POST", "/v1/networks"), ("GET", "/v1/host"),
            ("POST", "/v1/migrations/incoming/web/other"), ("GET", "/v1/migrations/incoming"),
            ("DELETE", "/v1/migrations/incoming/web/abort"), ("POST", "/v1/migrations/incoming//commit"),
            ("GET", "/v1/vms//"), ("GET", "/v2/vms/web"), ("GET", "vms/web"), ("GET", "/v1/vms/web/"),
        ]
        for (method, path) in closed {
            #expect(!PeerScope.allows(method: method, path: path), "\(method) \(path)")
        }
    }
}
