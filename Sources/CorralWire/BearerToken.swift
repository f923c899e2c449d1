#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CorralModel

/// A token file that cannot be used, with the reason.
public struct TokenFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

/// The TCP listener's shared secret.
public enum BearerToken {
    /// Compares in time that depends only on the lengths, not on where the texts differ.
    public static func matches(_ presented: String, _ expected: String) -> Bool {
        let a = Array(presented.utf8)
        let b = Array(expected.utf8)
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    /// Reads a token file: the first line, trimmed; refuses an empty one.
    public static func load(file: String) throws(TokenFileError) -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenFileError(description: "cannot read token file \(file)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let token = text.split(whereSeparator: \.isNewline).first.map {
            $0.trimmingCharactersInWhitespace()
        } ?? ""
        guard !token.isEmpty else { throw TokenFileError(description: "token file \(file) is empty") }
        guard token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw TokenFileError(description: "token in \(file) must be printable ASCII without spaces")
        }
        return token
    }
}

/// What a daemon's peer token (`--peer-token-file`) may do on another daemon: only what a migration needs from its
/// destination (prepare an incoming VM, commit or abort it, ask a VM's state) and the health check. A leaked peer
/// token cannot start VMs, run raw QMP, read consoles or change anything else.
public enum PeerScope {
    /// Whether `method path` (path without the query) is a route the peer token opens.
    public static func allows(method: String, path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard parts.first == "v1", !parts.contains(where: \.isEmpty) else { return false }
        let rest = Array(parts.dropFirst())
        switch (method, rest.count) {
        case ("GET", 1): return rest[0] == "health"
        // The state of one VM: a restarted source asks its destination who owns the guest.
        case ("GET", 2): return rest[0] == "vms"
        case ("POST", 2): return rest == ["migrations", "incoming"]
        case ("POST", 4): return rest[0] == "migrations" && rest[1] == "incoming" && ["commit", "abort"].contains(rest[3])
        default: return false
        }
    }
}
