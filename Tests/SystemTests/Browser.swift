import CorralModel
import CorralWire
import Foundation
import Supervisor
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium (Debian's `chromium-headless-shell`), driven over the DevTools protocol on its WebSocket:
/// one page, scripts evaluated in it, screenshots. Every call blocks: use it from a thread of its own
/// (`Browser.onThread`), never from Swift's concurrency pool.
final class Browser: @unchecked Sendable {
    static let executable = "/usr/bin/chromium-headless-shell"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let process: ProcessHandle
    private let connection: WebSocketConnection
    private var nextID = 1
    private var session = ""
    /// Uncaught exceptions in the page (`Runtime.exceptionThrown`), as text.
    private(set) var pageErrors: [String] = []

    private init(process: ProcessHandle, connection: WebSocketConnection) {
        self.process = process
        self.connection = connection
    }

    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Starts the browser with its own profile in `folder`, opens one page of `width`×`height`.
    static func launch(folder: String, width: Int = 1280, height: Int = 900) async throws -> Browser {
        try FileManager.default.createDirectory(atPath: folder + "/profile", withIntermediateDirectories: true)
        let log = folder + "/chromium.log"
        let process = try ProcessLauncher.launch(LaunchSpec(
            executable: executable,
            arguments: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                        "--disable-background-networking", "--remote-debugging-address=127.0.0.1",
                        "--remote-debugging-port=0", "--user-data-dir=\(folder)/profile",
                        "--window-size=\(width),\(height)", "about:blank"],
            outputFile: log))
        guard let line = await LineWait.first(in: log, within: .seconds(60), where: { $0.contains("DevTools listening on ws://") }),
              let url = line.range(of: "ws://").map({ String(line[$0.lowerBound...]).trimmingCharacters(in: .whitespaces) }),
              let components = URLComponents(string: url), let host = components.host, let port = components.port
        else {
            process.signal(SIGKILL)
            _ = await process.waitForExit(timeout: .seconds(10))
            throw Failure(description: "chromium did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        let path = components.path
        let browser = try await onThread {
            let client = CorralClient(endpoint: .tcp(try HostPort(parsing: "\(host):\(port)"), token: ""))
            let connection = try WebSocketConnection.open(client, path: path)
            let browser = Browser(process: process, connection: connection)
            let target = try browser.call("Target.createTarget", ["url": "about:blank"], inPage: false)
            guard let id = target["targetId"] as? String else { throw Failure(description: "no target: \(target)") }
            let attached = try browser.call("Target.attachToTarget", ["targetId": id, "flatten": true], inPage: false)
            guard let session = attached["sessionId"] as? String else { throw Failure(description: "no session") }
            browser.session = session
            _ = try browser.call("Runtime.enable")
            _ = try browser.call("Page.enable")
            _ = try browser.call("Emulation.setDeviceMetricsOverride",
                                 ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": false])
            return browser
        }
        return browser
    }

    /// Sends a command and waits for its answer (events that arrive meanwhile are noted or dropped).
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:], inPage: Bool = true, within seconds: Double = 60)
        throws -> [String: Any]
    {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if inPage { message["sessionId"] = session }
        try connection.sendText(Array(try JSONSerialization.data(withJSONObject: message)))
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
        while true {
            guard let bytes = try connection.receive(deadline: deadline) else {
                throw Failure(description: "the browser closed its DevTools connection")
            }
            guard let reply = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { continue }
            if reply["method"] as? String == "Runtime.exceptionThrown",
               let params = reply["params"] as? [String: Any], let details = params["exceptionDetails"] as? [String: Any] {
                let exception = (details["exception"] as? [String: Any])?["description"] as? String
                pageErrors.append(exception ?? (details["text"] as? String) ?? "\(details)")
            }
            guard reply["id"] as? Int == id else { continue }
            if let error = reply["error"] as? [String: Any] {
                throw Failure(description: "\(method): \(error["message"] ?? error)")
            }
            return reply["result"] as? [String: Any] ?? [:]
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    func evaluate(_ expression: String) throws -> Any? {
        let result = try call("Runtime.evaluate",
                              ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let details = result["exceptionDetails"] as? [String: Any] {
            let text = ((details["exception"] as? [String: Any])?["description"] as? String) ?? "\(details)"
            throw Failure(description: "\(expression): \(text)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Polls `expression` until it is `true` (every 250 ms, at most `seconds`: a loaded CI host is slow); whether it became true.
    func waitUntil(_ expression: String, within seconds: Double = 120) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try evaluate(expression) as? Bool == true { return true }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return false
    }

    func navigate(_ url: String) throws {
        try call("Page.navigate", ["url": url])
    }

    /// Types `text` as key presses into the focused element.
    func type(_ text: String) throws {
        for character in text {
            try call("Input.dispatchKeyEvent", ["type": "char", "text": String(character)])
        }
    }

    /// A PNG of the page as it is now: the viewport, or with `fullPage` all of it.
    func screenshot(to path: String, fullPage: Bool = false) throws {
        var params: [String: Any] = ["format": "png"]
        if fullPage {
            let metrics = try call("Page.getLayoutMetrics")
            let size = metrics["cssContentSize"] as? [String: Any]
            let width = size?["width"] as? Double ?? 1280
            let height = min(size?["height"] as? Double ?? 900, 6000)
            params["captureBeyondViewport"] = true
            params["clip"] = ["x": 0, "y": 0, "width": width, "height": height, "scale": 1]
        }
        let result = try call("Page.captureScreenshot", params)
        guard let text = result["data"] as? String, let data = Data(base64Encoded: text) else {
            throw Failure(description: "no screenshot data")
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    func close() async {
        connection.close()
        process.signal(SIGTERM)
        if await process.waitForExit(timeout: .seconds(20)) == nil {
            process.signal(SIGKILL)
            _ = await process.waitForExit(timeout: .seconds(10))
        }
    }
}

/// Expectations checked on a browser's thread: Swift Testing ties an issue to its test through the task, which a
/// thread of its own does not have, so they are collected there and recorded by the test's task (`report()`).
final class ThreadChecks: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [(String, SourceLocation)] = []

    func expect(_ condition: Bool, _ message: @autoclosure () -> String = "",
                fileID: String = #fileID, filePath: String = #filePath, line: Int = #line, column: Int = #column) {
        guard !condition else { return }
        let text = message()
        lock.lock()
        defer { lock.unlock() }
        failures.append((text.isEmpty ? "expectation failed" : text,
                         SourceLocation(fileID: fileID, filePath: filePath, line: line, column: column)))
    }

    /// Records every failure so far as an issue of the running test, and forgets them.
    func report() {
        lock.lock()
        let pending = failures
        failures = []
        lock.unlock()
        for (text, location) in pending { Issue.record(Comment(rawValue: text), sourceLocation: location) }
    }
}
