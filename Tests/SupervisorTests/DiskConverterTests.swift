import CorralModel
import DiskConversion
import Foundation
import Supervisor
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `DiskConverter` against a scripted qemu-img (a shell script): what happens to the temporary file, the output and
/// the process when qemu-img fails, when its check finds problems, and when the task is cancelled. The real qemu-img
/// and a guest are in SystemTests/ConvertTests.
@Suite struct DiskConverterTests {
    /// A folder with `in.vmdk`, and a fake `qemu-img` whose `info`, `convert` and `check` do what the test says.
    struct Bench {
        let folder: String
        var qemuImg: String { folder + "/qemu-img" }
        var input: String { folder + "/in.vmdk" }
        var output: String { folder + "/out.qcow2" }

        init(convert: String, check: String = #"echo '{"check-errors":0,"format":"qcow2"}'"#,
             measure: String = #"echo '{"required": 393216, "fully-allocated": 1441792}'"#) throws {
            var template = Array("/tmp/corral-dc-XXXXXX".utf8CString)
            folder = String(cString: mkdtemp(&template)!)
            let script = """
                #!/bin/sh
                for last; do :; done
                case "$1" in
                info) echo '{"virtual-size": 1048576, "format": "vmdk", "filename": "x"}' ;;
                convert) echo $$ > "\(folder)/convert.pid"; : > "$last"; \(convert) ;;
                check) \(check) ;;
                measure) \(measure) ;;
                esac
                """
            try script.write(toFile: qemuImg, atomically: true, encoding: .utf8)
            chmod(qemuImg, 0o755)
            try Data("not really a vmdk".utf8).write(to: URL(fileURLWithPath: input))
        }

        var listing: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() }

        func convert(progress: @escaping DiskConverter.Progress = { _ in }) async throws(ConvertError) -> ConversionResult {
            try await DiskConverter(qemuImg: qemuImg).convert(source: .file(path: input, format: .vmdk), to: output,
                                                              format: .qcow2, progress: progress)
        }

        func remove() { _ = try? FileManager.default.removeItem(atPath: folder) }
    }

    @Test func progressIsReportedOnceAndTheResultPutInPlace() async throws {
        let bench = try Bench(convert: #"printf '    (0.00/100%%)\r    (50.00/100%%)\r    (100.00/100%%)\r    (100.00/100%%)\r\n'"#)
        defer { bench.remove() }
        let seen = Seen()
        let result = try await bench.convert(progress: { seen.append($0) })
        #expect(seen.values == [0, 50, 100])
        #expect(result.virtualSize == 1_048_576 && result.check?.isClean == true)
        #expect(bench.listing == ["convert.pid", "in.vmdk", "out.qcow2", "qemu-img"])
    }

    @Test func qemuImgsErrorIsTheReasonAndNothingIsLeft() async throws {
        let bench = try Bench(convert: #"printf '    (0.00/100%%)\r    (12.00/100%%)\r'; echo "qemu-img: error while reading at byte 4096: Input/output error" >&2; exit 1"#)
        defer { bench.remove() }
        await #expect(throws: ConvertError.conversionFailed(
            path: bench.input, reason: "error while reading at byte 4096: Input/output error")) {
            _ = try await bench.convert()
        }
        #expect(bench.listing == ["convert.pid", "in.vmdk", "qemu-img"])
    }

    @Test func aCheckWithLeaksAndCorruptionsKeepsNothing() async throws {
        let bench = try Bench(convert: "true", check: #"echo '{"check-errors":0,"leaks":3,"corruptions":1,"format":"qcow2"}'; exit 2"#)
        defer { bench.remove() }
        await #expect(throws: ConvertError.checkFailed(path: bench.output,
                                                       report: CheckReport(corruptions: 1, leaks: 3, checkErrors: 0))) {
            _ = try await bench.convert()
        }
        #expect(bench.listing == ["convert.pid", "in.vmdk", "qemu-img"])
    }

    @Test func aCheckThatPrintsNoReportKeepsNothing() async throws {
        let bench = try Bench(convert: "true", check: #"echo "qemu-img: Could not open 'x': Permission denied" >&2; exit 1"#)
        defer { bench.remove() }
        await #expect(throws: ConvertError.checkUnreadable(path: bench.output, reason: "Permission denied")) {
            _ = try await bench.convert()
        }
        #expect(bench.listing == ["convert.pid", "in.vmdk", "qemu-img"])
    }

    /// Cancelling the task stops qemu-img (here it would sleep for a minute, deaf to SIGTERM), waits the grace period,
    /// kills it, waits until it is reaped, and only then removes the temporary file; a grandchild still holding the
    /// output pipe does not keep the converter waiting.
    @Test func cancellingStopsQemuImgAndRemovesTheTemporaryFile() async throws {
        let bench = try Bench(convert: "trap '' TERM; printf '    (1.00/100%%)\\r'; sleep 60 & exec sleep 60")
        defer { bench.remove() }
        let started = Seen()
        let task = Task { () async -> ConvertError? in
            do throws(ConvertError) { _ = try await bench.convert(progress: { started.append($0) }) } catch { return error }
            return nil
        }
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while started.values.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try #require(!started.values.isEmpty, "the fake qemu-img never reported progress")
        let pid = try #require(Int32(String(contentsOfFile: bench.folder + "/convert.pid", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        let cancelled = ContinuousClock.now
        task.cancel()
        let error = await task.value
        #expect(error == .interrupted(output: bench.output, reason: "cancelled"))
        _ = cancelled
        #expect(kill(pid, 0) != 0, "qemu-img (pid \(pid)) is gone")
        #expect(bench.listing == ["convert.pid", "in.vmdk", "qemu-img"])
        // The backgrounded grandchild: end it (it is in our process group, outside the converter's care).
        for candidate in Self.children(of: 1) + Self.children(of: getpid()) where Self.cmdline(candidate) == "sleep 60" {
            kill(candidate, SIGKILL)
        }
    }

    @Test func inputAndOutputProblemsComeBeforeQemuImgRuns() async throws {
        let bench = try Bench(convert: "true")
        defer { bench.remove() }
        let converter = DiskConverter(qemuImg: bench.qemuImg)
        await #expect(throws: ConvertError.missing(path: bench.folder + "/nothing.vdi")) {
            _ = try await converter.convert(source: .file(path: bench.folder + "/nothing.vdi", format: .vdi),
                                            to: bench.output, format: .qcow2)
        }
        await #expect(throws: ConvertError.notAFile(path: bench.folder)) {
            _ = try await converter.convert(source: .file(path: bench.folder, format: .raw), to: bench.output, format: .raw)
        }
        for name in ["", bench.folder + "/", bench.folder + "/new/"] {
            await #expect(throws: ConvertError.notAFile(path: name)) {
                _ = try await converter.convert(source: .file(path: bench.input, format: .vmdk), to: name, format: .qcow2)
            }
        }
        try Data("old".utf8).write(to: URL(fileURLWithPath: bench.output))
        await #expect(throws: ConvertError.outputExists(path: bench.output)) { _ = try await bench.convert() }
        #expect(try String(contentsOfFile: bench.output, encoding: .utf8) == "old")
        link(bench.input, bench.folder + "/same.vmdk")
        await #expect(throws: ConvertError.sameFile(input: bench.input, output: bench.folder + "/same.vmdk")) {
            _ = try await converter.convert(source: .file(path: bench.input, format: .vmdk),
                                            to: bench.folder + "/same.vmdk", format: .qcow2, replace: true)
        }
        await #expect(throws: ConvertError.outputFolder(path: "/nonexistent-corral/x.qcow2",
                                                        reason: "its folder /nonexistent-corral: No such file or directory")) {
            _ = try await converter.convert(source: .file(path: bench.input, format: .vmdk),
                                            to: "/nonexistent-corral/x.qcow2", format: .qcow2)
        }
        await #expect(throws: ConvertError.cannotRun(executable: bench.folder + "/no-qemu-img",
                                                     reason: "not found (install qemu-utils, or put qemu-img in PATH)")) {
            _ = try await DiskConverter(qemuImg: bench.folder + "/no-qemu-img").convert(
                source: .file(path: bench.input, format: .vmdk), to: bench.folder + "/new.qcow2", format: .qcow2)
        }
        #expect(!bench.listing.contains("convert.pid"), "qemu-img convert never ran")
    }

    /// A result larger than the free room (here 1 EiB) is refused before anything is written.
    @Test func noRoomForTheResultIsRefusedBeforeConverting() async throws {
        let bench = try Bench(convert: "true", measure: #"echo '{"required": 1152921504606846976}'"#)
        defer { bench.remove() }
        do {
            _ = try await bench.convert()
            Issue.record("converted without room")
        } catch {
            guard case .notEnoughSpace(let path, let needed, _) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(path == bench.output && needed == 1 << 60)
            #expect(error.description.hasPrefix("\(bench.output): needs 1024.0 PiB but its filesystem has "))
        }
        #expect(bench.listing == ["in.vmdk", "qemu-img"], "qemu-img convert never ran")
    }

    /// A qemu-img that cannot measure the source only skips the room check.
    @Test func aFailedMeasureSkipsTheRoomCheck() async throws {
        let bench = try Bench(convert: "true", measure: #"echo "qemu-img: measure is not supported" >&2; exit 1"#)
        defer { bench.remove() }
        _ = try await bench.convert()
        #expect(bench.listing == ["convert.pid", "in.vmdk", "out.qcow2", "qemu-img"])
    }

    static func children(of parent: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(parent)/task/\(parent)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0) }
    }

    static func cmdline(_ pid: Int32) -> String {
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }
}

/// Values reported from another thread.
final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Double] = []
    func append(_ value: Double) {
        lock.lock()
        recorded.append(value)
        lock.unlock()
    }
    var values: [Double] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }
}
