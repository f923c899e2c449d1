@testable import API
import CorralModel
import CorralWire
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The dashboard's listener over a fake control: the page and its files without a session, the token login and its
/// cookie, CSRF and origin checks on everything that changes state, logout, throttled guessing.
@Suite struct WebDashboardRouteTests {
    static let token = "admin-token-for-the-web-tests"
    static let host = "localhost"  // the authority of HummingbirdTesting's requests
    let fake = FakeControl(vms: [FakeControl.status("web"), FakeControl.status("db", state: .stopped)])

    static let assets = WebAssets(
        index: .init(contentType: "text/html; charset=utf-8", bytes: Array("<!doctype html><title>corral</title>".utf8)),
        assets: ["dashboard.js": .init(contentType: "text/javascript; charset=utf-8", bytes: Array("let x = 1;".utf8)),
                 "dashboard.css": .init(contentType: "text/css; charset=utf-8", bytes: Array("body {}".utf8))])

    func withWeb<T: Sendable>(limits: WebSessions.Limits = .init(), peerToken: String? = nil, metricsToken: String? = nil,
                              _ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        let web = WebDashboard(assets: Self.assets, sessions: WebSessions(token: Self.token, limits: limits))
        let app = Application(router: CorralAPI(control: fake).router(
            token: Self.token, peerToken: peerToken, metricsToken: metricsToken, web: web))
        return try await app.test(.router, body)
    }

    static func headers(cookie: String? = nil, csrf: String? = nil, origin: String? = nil, json: Bool = false) -> HTTPFields {
        var fields = HTTPFields()
        if let cookie { fields[.cookie] = cookie }
        if let csrf { fields[WebDashboard.csrfHeader] = csrf }
        if let origin { fields[.origin] = origin }
        if json { fields[.contentType] = "application/json" }
        return fields
    }

    struct Login {
        let cookie: String
        let csrf: String
        let setCookie: String
    }

    static func login(_ client: any TestClientProtocol, token: String = token) async throws -> Login {
        let response = try await client.execute(
            uri: "/web/login", method: .post, headers: headers(origin: "http://" + host, json: true),
            body: ByteBuffer(string: #"{"token": "\#(token)"}"#))
        try #require(response.status == .ok, "\(String(buffer: response.body))")
        let setCookie = try #require(response.headers[.setCookie])
        let reply = try JSONDecoder().decode(WebSessionReply.self, from: Data(response.body.readableBytesView))
        let pair = try #require(setCookie.split(separator: ";").first)
        return Login(cookie: String(pair), csrf: reply.csrf, setCookie: setCookie)
    }

    @Test func thePageAndItsFilesNeedNoSessionAndCarryTheirPolicy() async throws {
        try await withWeb { client in
            let page = try await client.execute(uri: "/", method: .get, headers: Self.headers())
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(page.headers[HTTPField.Name("Content-Security-Policy")!])
            #expect(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'")
                && !policy.contains("script-src 'self' 'unsafe-inline'"))
            #expect(page.headers[.xContentTypeOptions] == "nosniff")
            #expect(page.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            let script = try await client.execute(uri: "/assets/dashboard.js", method: .get, headers: Self.headers())
            #expect(script.status == .ok && String(buffer: script.body) == "let x = 1;")
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            // Only the files the dashboard has: nothing else from the folder, no path games.
            for path in ["/assets/secret.txt", "/assets/..%2Ftoken", "/assets/index.html"] {
                let other = try await client.execute(uri: path, method: .get, headers: Self.headers())
                #expect(other.status == .unauthorized, "\(path): \(other.status)")
            }
            // The API and the session route want a session (or the token).
            let list = try await client.execute(uri: "/v1/vms", method: .get, headers: Self.headers())
            #expect(list.status == .unauthorized)
            #expect(list.headers[.xContentTypeOptions] == "nosniff", "errors carry the headers too")
            let session = try await client.execute(uri: "/web/session", method: .get, headers: Self.headers())
            #expect(session.status == .unauthorized)
        }
    }

    @Test func aLoginGivesAnHttpOnlyStrictCookieThatOpensTheAPI() async throws {
        try await withWeb { client in
            let wrong = try await client.execute(
                uri: "/web/login", method: .post, headers: Self.headers(json: true),
                body: ByteBuffer(string: #"{"token": "guess"}"#))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            let login = try await Self.login(client)
            #expect(login.cookie.hasPrefix("corral_session=") && login.cookie.count == "corral_session=".count + 64)
            for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
                #expect(login.setCookie.contains(attribute), "\(login.setCookie) lacks \(attribute)")
            }
            #expect(!login.setCookie.contains("Secure"), "plain HTTP: a Secure cookie would never come back")
            let list = try await client.execute(uri: "/v1/vms", method: .get, headers: Self.headers(cookie: login.cookie))
            #expect(list.status == .ok)
            #expect(try JSONDecoder().decode([VMStatus].self, from: Data(list.body.readableBytesView)).count == 2)
            let session = try await client.execute(uri: "/web/session", method: .get,
                                                   headers: Self.headers(cookie: login.cookie))
            #expect(try JSONDecoder().decode(WebSessionReply.self, from: Data(session.body.readableBytesView)).csrf
                == login.csrf)
            // A made-up session id opens nothing.
            let forged = try await client.execute(
                uri: "/v1/vms", method: .get, headers: Self.headers(cookie: "corral_session=" + String(repeating: "a", count: 64)))
            #expect(forged.status == .unauthorized)
            // The bearer token works here as on the TCP listener.
            var bearer = Self.headers()
            bearer[.authorization] = "Bearer " + Self.token
            #expect(try await client.execute(uri: "/v1/vms", method: .get, headers: bearer).status == .ok)
        }
    }

    /// `--web-on-listen`: on the TCP listener the narrow tokens keep their scopes beside the dashboard's session.
    @Test func onTheTCPListenerThePeerAndMetricsTokensKeepTheirScope() async throws {
        try await withWeb(peerToken: "peer-token-0123456789", metricsToken: "metrics-token-0123456789") { client in
            func bearer(_ token: String) -> HTTPFields {
                var fields = Self.headers()
                fields[.authorization] = "Bearer " + token
                return fields
            }
            #expect(try await client.execute(uri: "/v1/vms", method: .get, headers: bearer("metrics-token-0123456789"))
                .status == .forbidden)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: bearer("metrics-token-0123456789"))
                .status != .forbidden)
            #expect(try await client.execute(uri: "/v1/vms/web/stop", method: .post, headers: bearer("peer-token-0123456789"))
                .status == .forbidden)
            // A wrong token is not rescued by a valid cookie next to it.
            let login = try await Self.login(client)
            var both = bearer("not-a-token-at-all")
            both[.cookie] = login.cookie
            #expect(try await client.execute(uri: "/v1/vms", method: .get, headers: both).status == .unauthorized)
            #expect(try await client.execute(uri: "/v1/vms", method: .get, headers: Self.headers(cookie: login.cookie))
                .status == .ok)
            #expect(await fake.calls.contains { if case .stop = $0 { true } else { false } } == false,
                    "the peer token's stop never reached the control")
        }
    }

    @Test func aChangeWithTheCookieNeedsTheCSRFTokenAndTheSameOrigin() async throws {
        try await withWeb { client in
            let login = try await Self.login(client)
            let missing = try await client.execute(uri: "/v1/vms/web/stop", method: .post,
                                                   headers: Self.headers(cookie: login.cookie))
            #expect(missing.status == .forbidden)
            let wrong = try await client.execute(uri: "/v1/vms/web/stop", method: .post,
                                                 headers: Self.headers(cookie: login.cookie, csrf: String(repeating: "0", count: 64)))
            #expect(wrong.status == .forbidden)
            let elsewhere = try await client.execute(
                uri: "/v1/vms/web/stop", method: .post,
                headers: Self.headers(cookie: login.cookie, csrf: login.csrf, origin: "http://evil.example"))
            #expect(elsewhere.status == .forbidden)
            #expect(String(buffer: elsewhere.body).contains("http://evil.example"))
            let delete = try await client.execute(uri: "/v1/vms/db", method: .delete,
                                                  headers: Self.headers(cookie: login.cookie))
            #expect(delete.status == .forbidden)
            #expect(await fake.calls == [], "nothing refused reached the daemon")
            let right = try await client.execute(
                uri: "/v1/vms/web/stop", method: .post,
                headers: Self.headers(cookie: login.cookie, csrf: login.csrf, origin: "http://" + Self.host))
            #expect(right.status == .ok)
            #expect(await fake.calls.count == 1)
        }
    }

    @Test func aLoginFromAnotherSiteOrNotAsJSONIsRefused() async throws {
        try await withWeb { client in
            let crossSite = try await client.execute(
                uri: "/web/login", method: .post, headers: Self.headers(origin: "http://evil.example", json: true),
                body: ByteBuffer(string: #"{"token": "\#(Self.token)"}"#))
            #expect(crossSite.status == .forbidden)
            #expect(crossSite.headers[.setCookie] == nil)
            let form = try await client.execute(
                uri: "/web/login", method: .post, headers: Self.headers(),
                body: ByteBuffer(string: "token=\(Self.token)"))
            #expect(form.status == .badRequest)
            #expect(form.headers[.setCookie] == nil)
        }
    }

    @Test func logoutEndsTheSession() async throws {
        try await withWeb { client in
            let login = try await Self.login(client)
            let withoutCSRF = try await client.execute(uri: "/web/logout", method: .post,
                                                       headers: Self.headers(cookie: login.cookie))
            #expect(withoutCSRF.status == .forbidden)
            let out = try await client.execute(uri: "/web/logout", method: .post,
                                               headers: Self.headers(cookie: login.cookie, csrf: login.csrf))
            #expect(out.status == .noContent)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            let after = try await client.execute(uri: "/v1/vms", method: .get, headers: Self.headers(cookie: login.cookie))
            #expect(after.status == .unauthorized)
        }
    }

    @Test func guessingIsThrottledEvenForTheRightToken() async throws {
        var limits = WebSessions.Limits()
        limits.failures = 3
        try await withWeb(limits: limits) { client in
            for _ in 0..<3 {
                let wrong = try await client.execute(uri: "/web/login", method: .post, headers: Self.headers(json: true),
                                                     body: ByteBuffer(string: #"{"token": "guess"}"#))
                #expect(wrong.status == .unauthorized)
            }
            let throttled = try await client.execute(
                uri: "/web/login", method: .post, headers: Self.headers(json: true),
                body: ByteBuffer(string: #"{"token": "\#(Self.token)"}"#))
            #expect(throttled.status == .tooManyRequests)
            #expect(throttled.headers[.retryAfter].flatMap(Int.init).map { (1...60).contains($0) } == true)
            #expect(throttled.headers[.setCookie] == nil)
        }
    }
}

/// Sessions as a value over a clock the test moves.
@Suite struct WebSessionsTests {
    final class Clock: @unchecked Sendable {
        var now: Double = 1_000_000
    }

    @Test func sessionsExpireAndTheOldestMakesRoom() async throws {
        let clock = Clock()
        var limits = WebSessions.Limits()
        limits.sessions = 2
        limits.lifetime = 100
        let sessions = WebSessions(token: "t", limits: limits, clock: { clock.now })
        guard case .accepted(let first) = await sessions.login(presented: "t") else { Issue.record("refused"); return }
        clock.now += 10
        guard case .accepted(let second) = await sessions.login(presented: "t") else { Issue.record("refused"); return }
        #expect(first.id != second.id && first.csrf != second.csrf && first.id.count == 64)
        #expect(await sessions.session(cookies: ["a=b; corral_session=\(first.id)"]) == first)
        clock.now += 10
        guard case .accepted = await sessions.login(presented: "t") else { Issue.record("refused"); return }
        #expect(await sessions.session(cookies: ["corral_session=\(first.id)"]) == nil, "the oldest made room")
        #expect(await sessions.session(cookies: ["corral_session=\(second.id)"]) == second)
        clock.now += 95
        #expect(await sessions.session(cookies: ["corral_session=\(second.id)"]) == nil, "expired")
    }

    @Test func failuresAgeOutOfTheWindow() async throws {
        let clock = Clock()
        var limits = WebSessions.Limits()
        limits.failures = 2
        limits.failureWindow = 60
        let sessions = WebSessions(token: "t", limits: limits, clock: { clock.now })
        #expect(await sessions.login(presented: "x") == .refused)
        clock.now += 30
        #expect(await sessions.login(presented: "y") == .refused)
        #expect(await sessions.login(presented: "t") == .throttled(retryAfter: 30))
        clock.now += 31
        guard case .accepted = await sessions.login(presented: "t") else {
            Issue.record("the first failure left the window")
            return
        }
    }

    @Test func cookieHeadersAreReadByName() {
        #expect(WebCookie.value(named: "corral_session", in: ["x=1; corral_session=abc; y=2"]) == "abc")
        #expect(WebCookie.value(named: "corral_session", in: ["corral_sessionx=abc", "corral_session=def"]) == "def")
        #expect(WebCookie.value(named: "corral_session", in: ["corral_session="]) == nil)
        #expect(WebCookie.value(named: "corral_session", in: []) == nil)
    }
}

/// Where `corrald` finds the dashboard's files by default.
@Suite struct WebAssetsTests {
    @Test func theBuildTreesFolderThenAnInstallPrefixAndTheEnvironmentFirst() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("corral-web-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/.build/x86_64-unknown-linux-gnu/debug", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/prefix/bin", withIntermediateDirectories: true)
        let built = root + "/.build/x86_64-unknown-linux-gnu/debug/corrald"
        let installed = root + "/prefix/bin/corrald"
        // Nothing built yet: the build tree's folder, which the refusal then names.
        #expect(WebAssets.defaultFolder(environment: [:], executable: built) == root + "/.build/web")
        #expect(throws: WebAssetsError.missing(root + "/.build/web/index.html")) {
            try WebAssets.load(from: root + "/.build/web")
        }
        try fm.createDirectory(atPath: root + "/.build/web", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/prefix/share/corral/web", withIntermediateDirectories: true)
        for folder in [root + "/.build/web", root + "/prefix/share/corral/web"] {
            for name in ["index.html", "dashboard.js", "dashboard.css"] {
                try "x".write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
            }
        }
        #expect(WebAssets.defaultFolder(environment: [:], executable: built) == root + "/.build/web")
        #expect(WebAssets.defaultFolder(environment: [:], executable: installed) == root + "/prefix/share/corral/web")
        #expect(WebAssets.defaultFolder(environment: ["CORRAL_WEB_ASSETS": "/elsewhere"], executable: built) == "/elsewhere")
        let loaded = try WebAssets.load(from: root + "/.build/web")
        #expect(loaded.index.contentType == "text/html; charset=utf-8" && loaded.assets.count == 2)
    }
}
