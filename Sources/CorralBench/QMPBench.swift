// `corral-bench qmp --socket PATH [--count N] [--decoder-mb M]`
//
// Measures query-status round trips through QMPClient and through a minimal raw socket loop on the same QEMU, then
// QMPStreamDecoder throughput on a synthetic buffer. Prints a markdown table. Used by scripts/bench-qmp.

import JSON
import QMP

#if canImport(Glibc)
import Glibc
#endif

func measureRaw(path: String, count: Int, warmup: Int) -> [UInt64] {
    guard let raw = RawQMP(path: path) else { fail("raw connect to \(path) failed: \(String(cString: strerror(errno)))") }
    raw.readLine()  // greeting
    raw.lineRoundTrip("{\"execute\":\"qmp_capabilities\"}")
    defer { raw.close() }
    var samples: [UInt64] = []
    samples.reserveCapacity(count)
    for index in 0..<(warmup + count) {
        let command = "{\"execute\":\"query-status\",\"id\":\(index)}"
        let start = monotonicNanoseconds()
        raw.lineRoundTrip(command)
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

// MARK: Mode

func runQMPBench(_ arguments: [String]) async {
    let flags = Flags(arguments) { usage() }
    guard let socketPath = flags.string("--socket") else { usage() }
    let count = flags.int("--count", default: 10_000)
    let decoderMegabytes = flags.int("--decoder-mb", default: 64)
    guard count > 0 else { usage() }

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

    func format(_ value: Double) -> String { decimal(value) }
    func ratio(_ value: Double) -> String { decimal(value, places: 2) + "×" }

    print("| query-status round trip (\(rawSamples.count) calls) | p50 µs | p99 µs | mean µs |")
    print("|---|---:|---:|---:|")
    print("| raw socket loop (write line, read to \\n) | \(format(raw.p50)) | \(format(raw.p99)) | \(format(raw.mean)) |")
    print("| QMPClient.execute (sequential awaits) | \(format(client.p50)) | \(format(client.p99)) | \(format(client.mean)) |")
    print("| ratio client / raw | \(ratio(client.p50 / raw.p50)) | \(ratio(client.p99 / raw.p99)) | \(ratio(client.mean / raw.mean)) |")
    print("")
    print("| QMPStreamDecoder (\(decoderMegabytes) MiB, 64 KiB reads) | MB/s | messages/s |")
    print("|---|---:|---:|")
    print("| typical replies and events | \(format(throughput.mbPerSecond)) | \(Int(throughput.messagesPerSecond)) |")
}
