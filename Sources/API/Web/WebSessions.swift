import CorralWire
import Foundation

/// The dashboard's logins. A browser that presents the admin token (`POST /web/login`) gets a session: a random
/// id in an HttpOnly, SameSite=Strict cookie, and a CSRF token the page sends back in `X-Corral-CSRF` with every
/// request that changes something. Sessions live in memory only (a daemon restart logs everyone out), at most
/// `Limits.sessions` of them (a new one evicts the oldest), each for `Limits.lifetime`. Failed logins are limited
/// (`Limits.failures` per `Limits.failureWindow`) so the token cannot be guessed at network speed.
public actor WebSessions {
    public struct Session: Sendable, Equatable {
        public let id: String
        public let csrf: String
        /// Seconds since the epoch.
        public let expiresAt: Double
    }

    public struct Limits: Sendable {
        public var sessions = 64
        public var lifetime: Double = 12 * 3600
        public var failures = 5
        public var failureWindow: Double = 60
        public init() {}
    }

    public enum LoginResult: Sendable, Equatable {
        case accepted(Session)
        case refused
        /// Too many failures lately: try again in this many seconds.
        case throttled(retryAfter: Int)
    }

    /// The cookie that carries the session id.
    public static let cookieName = "corral_session"

    private let token: String
    public let limits: Limits
    private let clock: @Sendable () -> Double
    private var sessions: [String: Session] = [:]
    private var failures: [Double] = []

    public init(token: String, limits: Limits = Limits(),
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.token = token
        self.limits = limits
        self.clock = clock
    }

    public func login(presented: String) -> LoginResult {
        let now = clock()
        failures.removeAll { $0 <= now - limits.failureWindow }
        if failures.count >= limits.failures, let oldest = failures.first {
            return .throttled(retryAfter: max(1, Int((oldest + limits.failureWindow - now).rounded(.up))))
        }
        guard BearerToken.matches(presented, token) else {
            failures.append(now)
            return .refused
        }
        dropExpired(now)
        while sessions.count >= limits.sessions, let oldest = sessions.values.min(by: { $0.expiresAt < $1.expiresAt }) {
            sessions[oldest.id] = nil
        }
        let session = Session(id: Self.randomHex(), csrf: Self.randomHex(), expiresAt: now + limits.lifetime)
        sessions[session.id] = session
        return .accepted(session)
    }

    /// The live session a request's `Cookie` header(s) name, if any.
    public func session(cookies: [String]) -> Session? {
        guard let id = WebCookie.value(named: Self.cookieName, in: cookies), let session = sessions[id] else {
            return nil
        }
        guard session.expiresAt > clock() else {
            sessions[id] = nil
            return nil
        }
        return session
    }

    public func logout(_ id: String) {
        sessions[id] = nil
    }

    public var count: Int { sessions.count }

    private func dropExpired(_ now: Double) {
        for (id, session) in sessions where session.expiresAt <= now { sessions[id] = nil }
    }

    /// 32 bytes from the system's cryptographic generator (getrandom), as 64 hex digits.
    static func randomHex() -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        for _ in 0..<32 {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text += String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }
        return text
    }
}

/// Cookie headers, read and written.
public enum WebCookie {
    /// The value of cookie `name` in `Cookie` header values (`a=1; b=2`); the first one wins.
    public static func value(named name: String, in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
                let value = String(trimmed[trimmed.index(after: equals)...])
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    /// `Set-Cookie` for a session: not readable by scripts, never sent by another site's page.
    public static func setSession(_ session: WebSessions.Session, maxAge: Int, secure: Bool) -> String {
        "\(WebSessions.cookieName)=\(session.id); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
            + (secure ? "; Secure" : "")
    }

    /// `Set-Cookie` that makes the browser forget the session.
    public static func clear(secure: Bool) -> String {
        "\(WebSessions.cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }
}
