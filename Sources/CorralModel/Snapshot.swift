/// One external disk snapshot of a VM (`corral snapshot ls`, `GET /v1/vms/NAME/snapshots`).
public struct SnapshotInfo: Sendable, Codable, Equatable {
    public var name: String
    /// Seconds since the epoch.
    public var created: Int64
    /// The disks it covers (disks added later are not in it).
    public var disks: [String]

    public init(name: String, created: Int64, disks: [String]) {
        self.name = name
        self.created = created
        self.disks = disks
    }
}

/// `POST /v1/vms/NAME/snapshots` (create).
public struct SnapshotCreateRequest: Sendable, Codable, Equatable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// What a snapshot create, revert or rm did.
public struct SnapshotResult: Sendable, Codable, Equatable {
    public var vm: String
    public var snapshot: String
    /// `created`, `reverted` or `removed`.
    public var action: String
    /// The disks it touched.
    public var disks: [String]
    /// Taken while QEMU ran (a live snapshot or a live commit).
    public var live: Bool
    /// revert: later snapshots, gone with the images they froze.
    public var dropped: [String]
    /// revert: disks added after the snapshot, left as they are.
    public var untouched: [String]

    public init(vm: String, snapshot: String, action: String, disks: [String], live: Bool, dropped: [String] = [],
                untouched: [String] = []) {
        self.vm = vm
        self.snapshot = snapshot
        self.action = action
        self.disks = disks
        self.live = live
        self.dropped = dropped
        self.untouched = untouched
    }
}

/// What a snapshot may be called: it becomes part of file and block node names.
public enum SnapshotName {
    public static let rule = "1 to 40 characters, letters, digits, '.', '_' or '-', starting with a letter or digit"

    public static func isValid(_ name: String) -> Bool {
        func alphanumeric(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        let bytes = Array(name.utf8)
        guard (1...40).contains(bytes.count), alphanumeric(bytes[0]) else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == 46 || $0 == 95 || $0 == 45 }
    }
}

extension SnapshotCreateRequest {
    public func validate() throws(RequestProblems) {
        try RequestProblems.check(SnapshotName.isValid(name) ? []
            : ["name: '\(name)' is not a valid snapshot name (\(SnapshotName.rule))"])
    }
}
