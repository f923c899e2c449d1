import CorralModel
import Foundation
import Supervisor
import Testing
import TestSupport

/// `display:` with real QEMU (unprivileged) and the test guest: the screenshot is a PNG of what the VGA shows
/// (SeaBIOS and the boot text), taken through an fd set; nothing of it stays behind.
@Suite(.serialized, .bootsGuests) struct DisplayTests {
    /// Distinct pixel values of a PNG (8-bit RGB/RGBA, any filter), decoded by Python's zlib: a blank screen has one.
    static func distinctPixels(_ png: [UInt8]) async throws -> Int {
        let file = Guest.tempFolder("png") + ".png"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data(png).write(to: URL(fileURLWithPath: file))
        let script = """
            import struct, sys, zlib
            data = open(sys.argv[1], 'rb').read()
            assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
            pos, idat, width, height, kind = 8, b'', 0, 0, 0
            while pos < len(data):
                length, tag = struct.unpack('>I4s', data[pos:pos + 8])
                body = data[pos + 8:pos + 8 + length]
                if tag == b'IHDR': width, height, depth, kind = struct.unpack('>IIBB', body[:10])
                if tag == b'IDAT': idat += body
                pos += 12 + length
            raw = zlib.decompress(idat)
            bpp = 4 if kind == 6 else 3
            stride = width * bpp
            rows, prev = [], bytearray(stride)
            for y in range(height):
                f = raw[y * (stride + 1)]
                line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
                for x in range(stride):
                    a = line[x - bpp] if x >= bpp else 0
                    b = prev[x]
                    c = prev[x - bpp] if x >= bpp else 0
                    if f == 1: line[x] = (line[x] + a) & 255
                    elif f == 2: line[x] = (line[x] + b) & 255
                    elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
                    elif f == 4:
                        p = a + b - c
                        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                        line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
                rows.append(bytes(line))
                prev = line
            print(len({row[i:i + bpp] for row in rows for i in range(0, stride, bpp)}), width, height)
            """
        let result = try await ProcessLauncher.run("python3", ["-c", script, file])
        try #require(result.status.isSuccess, "\(result.output)")
        return Int(result.output.split(separator: " ").first ?? "") ?? 0
    }

    @Test(.timeLimit(.minutes(4))) func aScreenshotShowsTheBootScreenAndLeavesNothingBehind() async throws {
        try Guest.requireBuilt()
        let root = Guest.tempFolder("screen")
        defer { Guest.cleanUp(root) }
        let profile = try Guest.writeProfile(in: root, name: "screen", extra: "display: { vga: std, vnc: true }\n")
        let plain = try Guest.writeProfile(in: root, name: "blind")
        let manager = try await VMManager.open(stateRoot: root + "/state", options: DaemonOptions())
        let up = try await manager.up(UpRequest(profile: profile))
        _ = try await HeartbeatWait.first(in: up.serialLog)
        let png = try await manager.screenshot("screen")
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(try await Self.distinctPixels(png) > 1, "the screen shows text, not one colour")
        let folder = try FileManager.default.contentsOfDirectory(atPath: root + "/state/vms/screen")
        #expect(!folder.contains { $0.hasPrefix("screenshot") }, "\(folder)")
        let sets = try await manager.qmp("screen", command: "query-fdsets", arguments: nil)
        #expect(!"\(sets)".contains("screenshot"), "no fd set of the screenshot stays in QEMU: \(sets)")

        _ = try await manager.up(UpRequest(profile: plain, paused: true))
        await #expect(throws: ControlError.self) { try await manager.screenshot("blind") }
        _ = try await manager.kill("blind")
        _ = try await manager.kill("screen")
    }
}
