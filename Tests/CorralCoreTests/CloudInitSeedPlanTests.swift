import CorralCore
import Profiles
import Testing

/// The seed's files and instance-id (pure).
struct CloudInitSeedPlanTests {
    @Test func theInstanceIDFollowsTheContentAndMetaDataCarriesHostnameAndKeys() {
        let cloudInit = CloudInit(sshKeys: ["ssh-ed25519 AAAA \"me\""])
        let docs = CloudInitSeedPlan.Documents(userData: "#cloud-config\n")
        let seed = CloudInitSeedPlan.seed(cloudInit, vmName: "web", documents: docs)
        #expect(seed.instanceID.hasPrefix("corral-") && seed.instanceID.count == 23)
        #expect(seed.files.map(\.name) == ["user-data", "meta-data"], "no network-config unless given")
        #expect(seed.files[1].content == "instance-id: \(seed.instanceID)\nlocal-hostname: web\n"
            + "public-keys:\n  - \"ssh-ed25519 AAAA \\\"me\\\"\"\n")
        // The same inputs, the same id; any change, another.
        #expect(CloudInitSeedPlan.seed(cloudInit, vmName: "web", documents: docs) == seed)
        let changed = [
            CloudInitSeedPlan.seed(cloudInit, vmName: "web2", documents: docs),
            CloudInitSeedPlan.seed(cloudInit, vmName: "web", documents: .init(userData: "#cloud-config\na: 1\n")),
            CloudInitSeedPlan.seed(CloudInit(hostname: "h", sshKeys: cloudInit.sshKeys), vmName: "web", documents: docs),
            CloudInitSeedPlan.seed(CloudInit(), vmName: "web", documents: docs),
            CloudInitSeedPlan.seed(cloudInit, vmName: "web", documents: .init(userData: "#cloud-config\n",
                                                                               networkConfig: "version: 2\n")),
        ]
        #expect(Set(changed.map(\.instanceID) + [seed.instanceID]).count == 6)
        let withNetwork = changed[4]
        #expect(withNetwork.files.map(\.name) == ["user-data", "meta-data", "network-config"])
    }

    @Test func defaultsAndExtraMetaData() {
        let seed = CloudInitSeedPlan.seed(CloudInit(hostname: "h1"), vmName: "web",
                                          documents: .init(metaData: "availability-zone: a"))
        #expect(seed.files[0].content == "#cloud-config\n", "empty user-data when none is given")
        #expect(seed.files[1].content == "instance-id: \(seed.instanceID)\nlocal-hostname: h1\navailability-zone: a\n")
    }
}
