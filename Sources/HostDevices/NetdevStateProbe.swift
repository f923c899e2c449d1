#if canImport(Glibc)
import Glibc
#endif

/// Whether a network interface is in use by the host: up, or holding addresses.
public struct NetdevState: Sendable, Equatable {
    public var isUp: Bool
    /// Its IPv4 and IPv6 addresses, as text.
    public var addresses: [String]

    public init(isUp: Bool, addresses: [String] = []) {
        self.isUp = isUp
        self.addresses = addresses
    }

    /// Down and without addresses: nothing on the host uses it.
    public var isIdle: Bool { !isUp && addresses.isEmpty }
}

/// Tells whether a host network interface is in use (the VF chooser skips VFs whose interface is).
public protocol NetdevStateProbe: Sendable {
    func state(of netdev: String) throws(KernelFileError) -> NetdevState
}

/// The host's view: IFF_UP from `/sys/class/net/NAME/flags`, addresses from getifaddrs(3).
public struct HostNetdevStateProbe: NetdevStateProbe {
    public let tree: any SysfsTree

    public init(tree: any SysfsTree) { self.tree = tree }

    public func state(of netdev: String) throws(KernelFileError) -> NetdevState {
        let path = "/sys/class/net/\(netdev)/flags"
        let text = try tree.value(path)
        guard let flags = UInt32(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: 16) else {
            throw KernelFileError(operation: "parse", path: path, errno: 0)
        }
        return NetdevState(isUp: flags & UInt32(IFF_UP) != 0, addresses: Self.addresses(of: netdev))
    }

    /// The interface's addresses (IPv4 and IPv6), as numeric text.
    static func addresses(of netdev: String) -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var result: [String] = []
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard String(cString: current.pointee.ifa_name) == netdev, let address = current.pointee.ifa_addr else {
                continue
            }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                result.append(String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return result
    }
}
