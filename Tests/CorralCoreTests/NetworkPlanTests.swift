import CorralCore
import CorralModel
import Testing

/// Managed networks, pure: subnets, ranges, names, dnsmasq's command line, the NAT ruleset, conflicts, leases.
@Suite struct NetworkPlanTests {
    static func spec(_ subnet: String = "198.51.100.0/24", nat: Bool = true, range: String? = nil) -> NetworkSpec {
        NetworkCreateRequest(name: "lab", subnet: subnet, nat: nat, dhcpRange: range).resolved()!
    }

    @Test func subnetsAreParsedWithTheirGatewayAndDefaultRange() throws {
        let subnet = try IPv4Subnet.parse("203.0.113.0/24").get()
        #expect(subnet.gateway.description == "203.0.113.1" && subnet.broadcast.description == "203.0.113.255")
        #expect(subnet.defaultDHCPRange.description == "203.0.113.2-203.0.113.254")
        #expect(subnet.contains(IPv4Address("203.0.113.77")!) && !subnet.contains(IPv4Address("203.0.114.1")!))
    }

    @Test(arguments: [
        ("198.51.100.0", "'198.51.100.0' is not a subnet like 198.51.100.0/24"),
        ("198.51.100.1/24", "'198.51.100.1/24' has host bits set: the network is 198.51.100.0/24"),
        ("198.51.100.0/31", "'198.51.100.0/31': the prefix must be between 8 and 30, got 31"),
        ("198.51.300.0/24", "'198.51.300.0/24' is not a subnet like 198.51.100.0/24"),
    ])
    func badSubnetsSayWhy(text: String, message: String) {
        #expect(IPv4Subnet.parse(text) == .failure(NetworkProblem(message)))
    }

    @Test func theRequestNamesEveryBadFlag() {
        let bad = NetworkCreateRequest(name: "Lab!", subnet: "198.51.100.0/24", dhcpRange: "198.51.100.1-198.51.100.9")
        #expect(throws: RequestProblems.self) { try bad.validate() }
        do { try bad.validate() } catch {
            #expect(error.description.contains("NAME: 'Lab!' is not a network name"))
            #expect(error.description.contains("--dhcp-range: '198.51.100.1-198.51.100.9' includes the gateway 198.51.100.1"))
        }
        let outside = NetworkCreateRequest(name: "lab", subnet: "198.51.100.0/24", dhcpRange: "198.51.100.10-203.0.113.9")
        do { try outside.validate(); Issue.record("accepted") } catch {
            #expect(error.description.contains("203.0.113.9 is not a host address of 198.51.100.0/24"))
        }
    }

    @Test func dnsmasqServesOnlyTheBridgeWithItsOwnLeases() {
        let files = NetworkPlan.Files(stateRoot: "/var/lib/corral", name: "lab")
        let args = NetworkPlan.dnsmasqArguments(Self.spec(range: "198.51.100.100-198.51.100.200"), files: files)
        #expect(args.contains("--interface=cn-lab") && args.contains("--bind-interfaces"))
        #expect(args.contains("--conf-file=/dev/null"), "no system configuration")
        #expect(args.contains("--dhcp-range=198.51.100.100,198.51.100.200,255.255.255.0,1h"))
        #expect(args.contains("--dhcp-leasefile=/var/lib/corral/networks/lab/dnsmasq.leases"))
        #expect(args.contains("--listen-address=198.51.100.1"))
    }

    @Test func theNATRulesetIsOneTableCorralOwnsAndReplacesWhole() {
        let text = NetworkPlan.natRuleset(Self.spec())
        #expect(text.hasPrefix("add table ip corral-lab\ndelete table ip corral-lab\ntable ip corral-lab {"))
        #expect(text.contains("ip saddr 198.51.100.0/24 ip daddr != 198.51.100.0/24 masquerade"))
        #expect(text.contains(#"iifname "cn-lab" accept"#))
    }

    @Test func aNameOrSubnetInUseIsAConflict() {
        let lab = Self.spec()
        let other = NetworkCreateRequest(name: "other", subnet: "198.51.100.128/25").resolved()!
        #expect(NetworkPlan.conflict(lab, existing: [lab], routes: []) == "a network named lab already exists")
        #expect(NetworkPlan.conflict(other, existing: [lab], routes: [])
            == "--subnet 198.51.100.128/25 overlaps network lab (198.51.100.0/24)")
        let route = try! IPv4Subnet.parse("198.51.0.0/16").get()
        #expect(NetworkPlan.conflict(lab, existing: [], routes: [route])
            == "--subnet 198.51.100.0/24 overlaps a route of this host (198.51.0.0/16); choose another subnet")
        #expect(NetworkPlan.conflict(lab, existing: [], routes: [try! IPv4Subnet.parse("203.0.113.0/24").get()]) == nil)
    }

    @Test func hostRoutesComeFromProcNetRouteWithoutTheDefault() {
        let text = """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
            """
        #expect(NetworkPlan.routes(procNetRoute: text).map(\.description) == ["192.0.2.0/24"])
    }

    @Test func leasesMapMACsToAddresses() {
        let text = """
            1733400000 52:54:00:AA:BB:CC 198.51.100.57 guest 01:52:54:00:aa:bb:cc
            1733400000 52:54:00:11:22:33 not-an-address * *
            """
        #expect(DHCPLeases.parse(text) == ["52:54:00:aa:bb:cc": "198.51.100.57"])
    }

    @Test func aNICOnANetworkGetsATapOnItsBridge() {
        #expect(NetworkName.bridge("lab") == "cn-lab" && NetworkName.nftTable("lab") == "corral-lab")
    }
}
