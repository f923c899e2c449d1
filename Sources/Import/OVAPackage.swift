/// Ties an OVA's tar members (`TarReader`) to its envelope and to the disks `OVFImport` found, without trusting a
/// name in either: an href names a member only by an exact, relative, `..`-free match. Pure.
///
/// The steps of `corral import ova`: list the members; `envelope(in:)`; read that member's bytes and
/// `OVFImport.importEnvelope`; `diskMembers(for:in:)`; convert each member's bytes (`dataOffset`, `size`) to
/// `result.profile.disks[i].file`.
public enum OVAPackage {
    /// Why a package cannot be imported.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// The envelope: the first member, which the OVF specification requires to be the `.ovf` file. A package whose
    /// first file is something else is refused (a tool that wrote it is not following the format).
    public static func envelope(in members: [TarMember]) throws(Failure) -> TarMember {
        guard let first = members.first(where: { $0.kind != .directory }) else {
            throw Failure("the package is empty")
        }
        guard first.kind == .file, first.name.lowercased().hasSuffix(".ovf") else {
            throw Failure("the package's first member is \(ImportNote.printable(first.name)), not the .ovf envelope "
                + "(an OVA starts with it)")
        }
        guard members.filter({ $0.name.lowercased().hasSuffix(".ovf") }).count == 1 else {
            throw Failure("the package holds several .ovf envelopes; corral imports one VM at a time")
        }
        return first
    }

    /// The member holding each disk's image, in `result.disks` order. Refuses an href that is absolute, holds
    /// `..`, or names no regular file of the package.
    public static func diskMembers(for result: ImportResult, in members: [TarMember]) throws(Failure) -> [TarMember] {
        var found: [TarMember] = []
        for disk in result.disks {
            let href = disk.source
            let parts = href.split(separator: "/", omittingEmptySubsequences: false)
            guard !href.isEmpty, !href.hasPrefix("/"), !parts.contains(".."), !href.contains("\\") else {
                throw Failure("disk \(disk.id): the href '\(ImportNote.printable(href))' is not a plain file name "
                    + "in the package")
            }
            let wanted = normalized(href)
            let matches = members.filter { normalized($0.name) == wanted }
            guard let member = matches.last else {
                throw Failure("disk \(disk.id): the package has no member \(ImportNote.printable(href))")
            }
            guard member.kind == .file else {
                throw Failure("disk \(disk.id): the member \(ImportNote.printable(member.name)) is not a regular file")
            }
            found.append(member)
        }
        return found
    }

    /// `./a/b` and `a//b` as `a/b`.
    static func normalized(_ name: String) -> String {
        name.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }
}
