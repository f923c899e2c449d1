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
