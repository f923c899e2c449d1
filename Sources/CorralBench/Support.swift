// Shared pieces of the corral-bench modes: a monotonic clock, sample summaries, a minimal blocking QMP socket,
// a serial-log heartbeat watcher and a tiny flag parser.

import JSON
import QMP
import UnixSockets

#if canImport(Glibc)
import Glibc
#endif

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func seconds(since start: UInt64) -> Double {
    Double(monotonicNanoseconds() - start) / 1e9
}

/// Writes to stderr (progress, errors) so stdout stays a clean markdown table.
func writeStderr(_ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}

func note(_ text: String) {
    writeStderr(text + "\n")
}

func fail(_ text: String) -> Never {
    writeStderr("corral-bench: \(text)\n")
    exit(1)
}

/// Latency summary in nanoseconds → microseconds (the `qmp` mode's table).
struct Summary {
    var p50: Double
    var p99: Double
    var mean: Double

    init(_ samples: [UInt64]) {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]) / 1000
        }
        p50 = percentile(0.50)
        p99 = percentile(0.99)
        mean = Double(sorted.reduce(0, +)) / Double(sorted.count) / 1000
    }
}

/// min / median / max / mean of a few samples (seconds or milliseconds, whatever the caller uses).
struct Spread {
    var count: Int
    var min: Double
    var median: Double
    var max: Double
    var mean: Double

    init?(_ samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        count = sorted.count
        min = sorted[0]
        max = sorted[sorted.count - 1]
        let mid = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }

    /// `median (min–max)` with one decimal.
    var cell: String { "\(decimal(median)) (\(decimal(min))–\(decimal(max)))" }
}

func decimal(_ value: Double, places: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return places == 0 ? String(Int(rounded)) : String(rounded)
}

// MARK: Flags

/// `--flag value` pairs and bare `--switch`es; anything else is a usage error.
struct Flags {
    private var values: [String: String] = [:]
    private var switches: Set<String> = []

    init(_ arguments: [String], switches known: Set<String> = [], usage: () -> Never) {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard flag.hasPrefix("--") else { usage() }
            if known.contains(flag) {
                switches.insert(flag)
                continue
            }
            guard let value = rest.popFirst() else { usage() }
            values[flag] = value
        }
    }

    func string(_ flag: String) -> String? { values[flag] }
    func int(_ flag: String, default value: Int) -> Int { values[flag].flatMap { Int($0) } ?? value }
    func double(_ flag: String, default value: Double) -> Double { values[flag].flatMap { Double($0) } ?? value }
    func has(_ flag: String) -> Bool { switches.contains(flag) }
}

// MARK: Raw QMP

/// The floor: one blocking Unix socket, a command line out, messages in through `QMPStreamDecoder`; events are
/// skipped. No actor, no id routing, no timeouts.
final class RawQMP {
    let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var decoder = QMPStreamDecoder()
    private var pending: [JSONValue] = []

    /// Connects once; nil when nothing listens (yet).
    init?(path: String) {
        guard let fd = try? UnixStreamConnect.connect(path: path) else { return nil }
        self.fd = fd
    }

    /// The next message (greeting, reply or event).
    func next() -> JSONValue {
        while pending.isEmpty {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { fail("raw QMP: read failed or EOF") }
            do {
                pending += try decoder.feed(buffer[0..<count])
            } catch {
                fail("raw QMP: \(error)")
            }
        }
        return pending.removeFirst()
    }

    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { fail("raw QMP: write failed") }
            offset += sent
        }
    }

    /// Sends one command and returns its reply (`return` or `error` object), skipping events.
    @discardableResult
    func execute(_ line: String) -> JSONValue {
        send(line)
        while true {
            let message = next()
            if message["return"] != nil || message["error"] != nil { return message }
        }
    }

    /// Greeting + `qmp_capabilities`.
    func handshake() {
        let greeting = next()
        guard greeting["QMP"] != nil else { fail("raw QMP: no greeting, got \(greeting.compactText)") }
        let reply = execute("{\"execute\":\"qmp_capabilities\"}")
        guard reply["return"] != nil else { fail("raw QMP: qmp_capabilities failed: \(reply.compactText)") }
    }

    // The `qmp` mode's floor reads lines without decoding them; do not mix it with `next()` on one connection.

    /// Reads until what has arrived ends in "\n"; returns the byte count.
    @discardableResult
    func readLine() -> Int {
        var total = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { fail("raw QMP: read failed or EOF") }
            total += count
            if buffer[total - 1] == 0x0A { return total }
        }
    }

    /// Writes `line` + "\n" and reads to the next "\n", without parsing anything.
    func lineRoundTrip(_ line: String) {
        send(line)
        readLine()
    }

    func close() {
        Glibc.close(fd)
    }
}

// MARK: Heartbeats

/// One `CORRAL-HB` line of the test guest (docs/test-guest.md).
struct Heartbeat: Equatable {
    var n: Int
    var cpus: Int
    var disks: [String]
    var nics: [String]
    var memkb: Int

    /// Parses `CORRAL-HB n=.. cpus=.. disks=a,b nics=c memkb=..` (a trailing `\r` is allowed).
    init?(line: Substring) {
        var text = line
        while text.last == "\r" || text.last == "\n" { text = text.dropLast() }
        guard text.hasPrefix("CORRAL-HB ") else { return nil }
        var fields: [Substring: Substring] = [:]
        for part in text.dropFirst("CORRAL-HB ".count).split(separator: " ") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            fields[part[..<eq]] = part[part.index(after: eq)...]
        }
        guard let n = fields["n"].flatMap({ Int($0) }), let cpus = fields["cpus"].flatMap({ Int($0) }),
              let memkb = fields["memkb"].flatMap({ Int($0) })
        else { return nil }
        func list(_ key: Substring) -> [String] {
            (fields[key] ?? "").split(separator: ",").map(String.init)
        }
        self.n = n
        self.cpus = cpus
        self.disks = list("disks")
        self.nics = list("nics")
        self.memkb = memkb
    }
}

/// Follows a serial log by polling (every `interval` µs) from the end it had when created, and hands back
/// heartbeats as they appear, each stamped with the monotonic time it was first seen.
final class HeartbeatWatcher {
    let path: String
    private var offset: Int = 0
    private var partial: [UInt8] = []
    let pollMicroseconds: UInt32

    init(path: String, pollMicroseconds: UInt32 = 5000) {
        self.path = path
        self.pollMicroseconds = pollMicroseconds
        offset = Self.size(path)
    }

    static func size(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Skips everything written so far.
    func skipToEnd() {
        offset = Self.size(path)
        partial.removeAll()
    }

    /// New complete heartbeat lines since the last call.
    func poll() -> [Heartbeat] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { Glibc.close(fd) }
        var chunk = [UInt8](repeating: 0, count: 65536)
        var beats: [Heartbeat] = []
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(offset)) }
            guard count > 0 else { break }
            offset += count
            partial += chunk[0..<count]
            while let newline = partial.firstIndex(of: 0x0A) {
                let line = String(decoding: partial[..<newline], as: UTF8.self)
                partial.removeSubrange(...newline)
                if let beat = Heartbeat(line: line[...]) { beats.append(beat) }
            }
        }
        return beats
    }

    /// Waits until a heartbeat satisfies `condition`; returns it and the monotonic time it was seen, or nil after
    /// `timeout` seconds.
    /// Sleeps between polls (never blocks a thread of the cooperative pool the Supervisor runs on).
    func wait(timeout: Double, until condition: (Heartbeat) -> Bool) async -> (Heartbeat, UInt64)? {
        let start = monotonicNanoseconds()
        while seconds(since: start) < timeout {
            for beat in poll() where condition(beat) { return (beat, monotonicNanoseconds()) }
            try? await Task.sleep(for: .microseconds(Int(pollMicroseconds)))
        }
        return nil
    }
}
