import CorralModel
import CorralWire
import Foundation
import Synchronization

/// etcd's v3 API through its JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`, `/v3/lease/grant`, …), over corral's own
/// small HTTP client: no gRPC stack to build and load for a handful of unary calls, and the same requests work with
/// `curl` when an operator wants to look. Keys and values are base64 on the wire, 64-bit numbers strings.
///
/// Several endpoints (one per etcd member): a request goes to the one that last answered, and on a transport failure
/// to the next, so one member down costs one timeout at most.
public final class EtcdGateway: ClusterStore {
    public let endpoints: [HostPort]
    private let current = Mutex(0)
    /// How long one request may take (a keep-alive must fit well inside the lease's TTL).
    private let timeout: Duration

    /// Mutual TLS towards etcd (`https://` endpoints): etcd's CA, and the client certificate etcd checks.
    public let tls: TLSFiles?

    /// `urls`: `http://HOST:PORT` (or `HOST:PORT`), one per member; `https://HOST:PORT` with `tls` (all or none).
    public init(urls: [String], tls: TLSFiles? = nil, timeout: Duration = .seconds(2)) throws(ClusterError) {
        var endpoints: [HostPort] = []
        let secure = urls.filter { $0.hasPrefix("https://") }.count
        if secure != 0, secure != urls.count {
            throw .refused("the etcd endpoints mix http:// and https://: give all members the same scheme")
        }
        if secure > 0, tls == nil {
            throw .refused("https:// etcd endpoints need client TLS files (corral daemon --cluster-tls DIR with "
                + "ca-cert.pem, client-cert.pem, client-key.pem)")
        }
        if secure == 0, tls != nil {
            throw .refused("--cluster-tls needs https:// etcd endpoints")
        }
        for url in urls {
            var text = url
            if text.hasPrefix("https://") { text.removeFirst("https://".count) }
            if text.hasPrefix("http://") { text.removeFirst("http://".count) }
            while text.hasSuffix("/") { text.removeLast() }
            do {
                endpoints.append(try HostPort(parsing: text))
            } catch {
                throw .refused("'\(url)' is not an etcd endpoint like http://192.0.2.1:2379: \(error)")
            }
        }
        guard !endpoints.isEmpty else { throw .refused("no etcd endpoint given") }
        self.endpoints = endpoints
        self.tls = tls
        self.timeout = timeout
    }

    // MARK: ClusterStore

    public func grantLease(ttl: Int) async throws(ClusterError) -> Int64 {
        let reply = try await call("/v3/lease/grant", ["TTL": ttl])
        guard let id = Self.int(reply["ID"]), id != 0 else { throw .malformed("a lease grant without an ID") }
        return id
    }

    public func keepAlive(_ lease: Int64) async throws(ClusterError) -> Int {
        let reply = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = reply["result"] as? [String: Any] ?? [:]
        return Int(Self.int(result["TTL"]) ?? 0)
    }

    public func revoke(_ lease: Int64) async throws(ClusterError) {
        _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
    }

    public func get(_ key: String) async throws(ClusterError) -> ClusterEntry? {
        try Self.entries(try await call("/v3/kv/range", ["key": Self.b64(key)])).first
    }

    public func list(prefix: String) async throws(ClusterError) -> [ClusterEntry] {
        try Self.entries(try await call("/v3/kv/range", ["key": Self.b64(prefix), "range_end": Self.b64(Self.prefixEnd(prefix))]))
    }

    public func put(_ key: String, _ value: String, lease: Int64?) async throws(ClusterError) {
        _ = try await call("/v3/kv/put", Self.putBody(key, value, lease: lease))
    }

    public func delete(_ key: String) async throws(ClusterError) {
        _ = try await call("/v3/kv/deleterange", ["key": Self.b64(key)])
    }

    public func transaction(_ compares: [ClusterCompare], success: [ClusterOperation], failure: [ClusterOperation])
        async throws(ClusterError) -> ClusterTransactionResult
    {
        let body: [String: Any] = [
            "compare": compares.map(Self.compareBody),
            "success": success.map(Self.operationBody),
            "failure": failure.map(Self.operationBody),
        ]
        let reply = try await call("/v3/kv/txn", body)
        let succeeded = reply["succeeded"] as? Bool ?? false
        let ran = succeeded ? success : failure
        let responses = reply["responses"] as? [[String: Any]] ?? []
        guard responses.count == ran.count else {
            throw .malformed("a transaction of \(ran.count) operations answered \(responses.count)")
        }
        var reads: [ClusterEntry?] = []
        for (operation, response) in zip(ran, responses) {
            guard case .get = operation else { continue }
            reads.append(try Self.entries(response["response_range"] as? [String: Any] ?? [:]).first)
        }
        return ClusterTransactionResult(succeeded: succeeded, reads: reads)
    }

    // MARK: Wire

    /// One call, on the endpoint that last answered, then on each other one.
    private func call(_ path: String, _ body: [String: Any]) async throws(ClusterError) -> [String: Any] {
        let payload: [UInt8]
        do { payload = Array(try JSONSerialization.data(withJSONObject: body)) } catch {
            throw .malformed("cannot encode a request: \(error)")
        }
        let start = current.withLock { $0 }
        var failures: [String] = []
        for step in 0..<endpoints.count {
            let index = (start + step) % endpoints.count
            let endpoint = endpoints[index]
            let request = HTTPRequest(method: "POST", target: path, headers: [("Content-Type", "application/json")],
                                      body: payload)
            let head: HTTPResponseHead
            let bytes: [UInt8]
            do {
                let response = try await HTTPCall.send(request, to: .tcp(endpoint, tls: tls), connectTimeout: 1,
                                                       timeout: timeout, timeoutCoversBody: true)
                head = response.head
                bytes = try await response.collect(limit: 16 << 20)
            } catch {
                failures.append("\(endpoint): \(error)")
                continue
            }
            current.withLock { $0 = index }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else {
                throw .malformed("\(endpoint)\(path): \(String(decoding: bytes.prefix(200), as: UTF8.self))")
            }
            guard head.status == 200 else {
                let message = object["message"] as? String ?? object["error"] as? String ?? "HTTP \(head.status)"
                throw .refused("\(path): \(message)")
            }
            return object
        }
        throw .unreachable(failures.joined(separator: "; "))
    }

    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func unb64(_ value: Any?) -> String? {
        guard let text = value as? String, let data = Data(base64Encoded: text) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// etcd writes 64-bit numbers as strings; small ones sometimes as numbers.
    static func int(_ value: Any?) -> Int64? {
        if let text = value as? String { return Int64(text) }
        if let number = value as? NSNumber { return number.int64Value }
        return nil
    }

    /// The smallest key after every key with this prefix (etcd's range_end for a prefix).
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0x7F {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    static func entries(_ range: [String: Any]) throws(ClusterError) -> [ClusterEntry] {
        let kvs = range["kvs"] as? [[String: Any]] ?? []
        var entries: [ClusterEntry] = []
        for kv in kvs {
            guard let key = unb64(kv["key"]) else { throw .malformed("a key that is not base64") }
            entries.append(ClusterEntry(key: key, value: unb64(kv["value"]) ?? "",
                                        createRevision: int(kv["create_revision"]) ?? 0,
                                        modRevision: int(kv["mod_revision"]) ?? 0, lease: int(kv["lease"]) ?? 0))
        }
        return entries
    }

    static func putBody(_ key: String, _ value: String, lease: Int64?) -> [String: Any] {
        var body: [String: Any] = ["key": b64(key), "value": b64(value)]
        if let lease { body["lease"] = String(lease) }
        return body
    }

    static func compareBody(_ compare: ClusterCompare) -> [String: Any] {
        switch compare {
        case .absent(let key):
            return ["key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"]
        case .present(let key):
            return ["key": b64(key), "target": "CREATE", "result": "GREATER", "create_revision": "0"]
        case .valueEquals(let key, let value):
            return ["key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)]
        }
    }

    static func operationBody(_ operation: ClusterOperation) -> [String: Any] {
        switch operation {
        case .put(let key, let value, let lease): return ["request_put": putBody(key, value, lease: lease)]
        case .delete(let key): return ["request_delete_range": ["key": b64(key)]]
        case .get(let key): return ["request_range": ["key": b64(key)]]
        }
    }
}
