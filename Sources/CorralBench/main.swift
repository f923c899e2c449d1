// corral-bench: benchmark harness for scripts/bench-*. Not part of the product.
//
//   corral-bench qmp --socket PATH [--count N]
//
// Measures query-status round trips through QMPClient and through a minimal raw socket loop on the same QEMU, then
// QMPStreamDecoder throughput on a synthetic buffer. Prints a markdown table.

import JSON
import QMP

#if canImport(Glibc)
import Glibc
#endif

func usage() -> Never {
    print("usage: corral-bench qmp --socket PATH [--count N]")
    exit(2)
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

struct Summary {
    var p50: Double
    var p99: Double
    var mean: Double

    /// Latencies in nanoseconds → microseconds.
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

// MARK: Raw loop

/// The floor: one blocking socket, write the command line, read until "\n". No JSON parsing at all.
final class RawQMP {
    let fd: Int32
    var buffer = [UInt8](repeating: 0, count: 65536)

    init(path: String) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            print("raw connect to \(path) failed: \(String(cString: strerror(errno)))")
            exit(1)
        }
        _ = readLine()  // greeting
        roundTrip(Array("{\"execute\":\"qmp_capabilities\"}\n".utf8))
    }

    /// Reads until a "\n" ends what has arrived; returns the byte count.
    @discardableResult
    func readLine() -> Int {
        var total = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, $0.count - total) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                print("raw read failed or EOF")
                exit(1)
            }
            total += count
            if buffer[total - 1] == 0x0A { return total }
        }
    }

    func roundTrip(_ command: [UInt8]) {
        var offset = 0
        while offset < command.count {
            let sent = command.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else {
                print("raw write failed")
                exit(1)
            }
            offset += sent
        }
        readLine()
    }

    func close() {
        Glibc.close(fd)
    }
}

func measureRaw(path: String, count: Int, warmup: Int) -> [UInt64] {
    let raw = RawQMP(path: path)
    defer { raw.close() }
    var samples: [UInt64] = []
    samples.reserveCapacity(count)
    for index in 0..<(warmup + count) {
        let command = Array("{\"execute\":\"query-status\",\"id\":\(index)}\n".utf8)
        let start = monotonicNanoseconds()
        raw.roundTrip(command)
        let elapsed = monotonicNanoseconds() - start
        if index >= warmup { samples.append(elapsed) }
    }
    return samples
}

func measureClient(path: String, count: Int, warmup: Int) async -> [UInt64] {
    let client: QMPClient
    do {
        client = try await QMPClient.connect(socketPath: path)
    } catch {
        print("client connect failed: \(error)")
        exit(1)
    }
    var samples: [UInt64] = []
    samples.reserveCapacity(count)
    for index in 0..<(warmup + count) {
        let start = monotonicNanoseconds()
        do {
            _ = try await client.execute("query-status")
        } catch {
            print("query-status failed: \(error)")
            exit(1)
        }
        let elapsed = monotonicNanoseconds() - start
        if index >= warmup { samples.append(elapsed) }
    }
    await client.close()
    return samples
}

// MARK: Decoder throughput

func measureDecoder(megabytes: Int) -> (mbPerSecond: Double, messagesPerSecond: Double) {
    let samples: [JSONValue] = [
        ["return": ["status": "running", "singlestep": false, "running": true], "id": 12345],
        ["timestamp": ["seconds": 1_700_000_000, "microseconds": 123_456], "event": "RESUME"],
        ["return": [:], "id": 12346],
        ["timestamp": ["seconds": 1_700_000_001, "microseconds": 5], "event": "DEVICE_DELETED",
         "data": ["device": "net1", "path": "/machine/peripheral/net1"]],
        ["return": [["current": true, "CPU": 0, "qom_path": "/machine/unattached/device[0]", "thread_id": 4242,
                     "props": ["core-id": 0, "thread-id": 0, "socket-id": 0], "target": "x86_64"]], "id": 12347],
        ["return": ["actual": 2_147_483_648], "id": 12348],
        ["error": ["class": "GenericError", "desc": "Device 'net9' not found"], "id": 12349],
    ]
    let unit = Array(samples.map { $0.compactText + "\r\n" }.joined().utf8)
    var buffer: [UInt8] = []
    let target = megabytes << 20
    buffer.reserveCapacity(target + unit.count)
    var messagesInBuffer = 0
    while buffer.count < target {
        buffer += unit
        messagesInBuffer += samples.count
    }

    var decoder = QMPStreamDecoder()
    var decoded = 0
    let start = monotonicNanoseconds()
    buffer.withUnsafeBufferPointer { all in
        var offset = 0
        while offset < all.count {
            let end = min(offset + 65536, all.count)
            do {
                decoded += try decoder.feed(UnsafeBufferPointer(rebasing: all[offset..<end])).count
            } catch {
                print("decoder failed: \(error)")
                exit(1)
            }
            offset = end
        }
    }
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    precondition(decoded == messagesInBuffer, "decoded \(decoded) of \(messagesInBuffer) messages")
    return (Double(buffer.count) / 1e6 / seconds, Double(decoded) / seconds)
}

// MARK: Main

var arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.first == "qmp" else { usage() }
arguments.removeFirst()
var socketPath: String?
var count = 10_000
var decoderMegabytes = 64
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard let value = arguments.first else { usage() }
    arguments.removeFirst()
    switch flag {
    case "--socket": socketPath = value
    case "--count": count = Int(value) ?? count
    case "--decoder-mb": decoderMegabytes = Int(value) ?? decoderMegabytes
    default: usage()
    }
}
guard let socketPath, count > 0 else { usage() }

let warmup = max(100, count / 20)
// Alternate the two loops in two rounds each, so background load on the host hits both alike.
var rawSamples: [UInt64] = []
var clientSamples: [UInt64] = []
for _ in 0..<2 {
    rawSamples += measureRaw(path: socketPath, count: count / 2, warmup: warmup)
    clientSamples += await measureClient(path: socketPath, count: count / 2, warmup: warmup)
}
let raw = Summary(rawSamples)
let client = Summary(clientSamples)
let throughput = measureDecoder(megabytes: decoderMegabytes)

func format(_ value: Double) -> String {
    String((value * 10).rounded() / 10)
}

print("| query-status round trip (\(rawSamples.count) calls) | p50 µs | p99 µs | mean µs |")
print("|---|---:|---:|---:|")
print("| raw socket loop (write line, read to \\n) | \(format(raw.p50)) | \(format(raw.p99)) | \(format(raw.mean)) |")
print("| QMPClient.execute (sequential awaits) | \(format(client.p50)) | \(format(client.p99)) | \(format(client.mean)) |")
print("| ratio client / raw | \(String(format: client.p50 / raw.p50)) | \(String(format: client.p99 / raw.p99)) | \(String(format: client.mean / raw.mean)) |")
print("")
print("| QMPStreamDecoder (\(decoderMegabytes) MiB, 64 KiB reads) | MB/s | messages/s |")
print("|---|---:|---:|")
print("| typical replies and events | \(format(throughput.mbPerSecond)) | \(Int(throughput.messagesPerSecond)) |")

extension String {
    init(format value: Double) {
        self = String((value * 100).rounded() / 100) + "×"
    }
}
