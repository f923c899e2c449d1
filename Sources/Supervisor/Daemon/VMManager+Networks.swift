import CorralControl
import CorralModel

/// Managed networks at the daemon level: the `NetworkManager` does the work; this knows which VMs use what.
extension VMManager: NetworkControl {
    public func createNetwork(_ request: NetworkCreateRequest) async throws(ControlError) -> NetworkInfo {
        try await networkManager.create(request)
    }

    public func networks() async -> [NetworkInfo] {
        var out: [NetworkInfo] = []
        for name in await networkManager.names { out.append(await networkManager.info(name, vms: await users(of: name))) }
        return out
    }

    public func network(_ name: String) async throws(ControlError) -> NetworkInfo {
        guard await networkManager.exists(name) else { throw await networkManager.notFound(name) }
        return await networkManager.info(name, vms: await users(of: name))
    }

    public func removeNetwork(_ name: String) async throws(ControlError) {
        try await networkManager.remove(name, usedBy: await users(of: name))
    }

    /// The VMs with a NIC (from the profile or hotplugged) on network `name`.
    func users(of name: String) async -> [String] {
        var out: [String] = []
        for vmName in vms.keys.sorted() {
            guard let vm = vms[vmName] else { continue }
            let config = await vm.config
            if (config.profile.nics + config.hotplugged.nics.map(\.nic)).contains(where: { $0.network == name }) {
                out.append(vmName)
            }
        }
        return out
    }
}
