import CorralModel
import DiskConversion
import Foundation
import JSON
import QMP

#if canImport(Glibc)
import Glibc
#endif

/// Converts a disk image (VMware, VirtualBox, Hyper-V, old QEMU, raw) to qcow2 or raw with qemu-img, so that
/// `corral convert` and `corral import` make disks a profile can use.
///
/// ```swift
/// let converter = DiskConverter()
/// let result = try await converter.convert(
///     source: .archiveMember(archive: "/srv/web.ova", offset: 1536, size: 2_147_483_648, format: .vmdk),
///     to: "/var/lib/corral/images/web.qcow2", format: .qcow2,
///     progress: { percent in print(percent) })
/// ```
///
/// What it guarantees:
/// - The output's filesystem has room for the result (`qemu-img measure`'s `required`), or nothing starts.
/// - qemu-img never probes a format: the source's format is always given (`-f`), and a source that refers to other
///   files (backing file, data file, VMDK extents outside its folder) is refused (`ImageInspection`).
/// - The output is written to a temporary file beside it (`.NAME.corral-convert-XXXXXX`, mode 0600), checked
///   (`qemu-img check` for qcow2), synced, and only then renamed to its name.
/// - On any failure, and when the calling task is cancelled, qemu-img is stopped (SIGTERM, then SIGKILL) and waited
///   for, and the temporary file is removed: nothing is left behind. An existing output is never touched unless
///   `replace` is true, and then only by the final rename.
public struct DiskConverter: Sendable {
    /// qemu-img's name (looked up in PATH) or path.
    public var qemuImg: String

    public init(qemuImg: String = "qemu-img") { self.qemuImg = qemuImg }

    /// Progress of `qemu-img convert`, percent (0…100), as qemu-img reports it; called from another thread.
    public typealias Progress = @Sendable (Double) -> Void

    /// Converts `source` into the file `output` in `format`.
    ///
    /// - Parameters:
    ///   - source: a file (`.file(path:format:)`) or a member of an archive read in place
    ///     (`.archiveMember(archive:offset:size:format:)`).
    ///   - output: the file to write; its folder must exist.
    ///   - replace: replace an existing `output` (else `.outputExists`).
    ///   - progress: called as qemu-img reports progress.
    /// - Throws: `ConvertError`, whose `description` names the file and what is wrong; `.interrupted` when the task
    ///   was cancelled (or qemu-img was killed by a signal).
    public func convert(source: DiskSource, to output: String, format: DiskFormat, replace: Bool = false,
                        progress: @escaping Progress = { _ in }) async throws(ConvertError) -> ConversionResult
    {
        let started = ContinuousClock.now
        guard let executable = HostProbe.findExecutable(qemuImg) else {
            throw .cannotRun(executable: qemuImg, reason: "not found (install qemu-utils, or put qemu-img in PATH)")
        }
        let input = try Self.checkInput(source)
        try Self.checkOutput(output, replace: replace, input: input, inputName: source.path)
        try Self.stopIfCancelled(output)

        // What the image is and what it refers to, before anything is written.
        let info = try await runCollecting(executable, QemuImg.infoArguments(source), output: output)
        guard info.status.isSuccess else {
            let reason = QemuImg.reason(in: info.errors, imageName: source.qemuImageName) ?? info.status.description
            throw .refused(path: source.displayName, format: source.format, reason: reason)
        }
        guard let infoJSON = try? JSONValue(parsing: info.text) else {
            throw .unreadable(path: source.displayName, reason: "qemu-img info printed no JSON")
        }
        let inspection: ImageInspection
        switch ImageInspection.inspect(infoJSON, source: source) {
        case .success(let inspected): inspection = inspected
        case .failure(let problem): throw problem
        }
        try Self.stopIfCancelled(output)

        // Room for the result, as qemu-img measures it: refused now rather than when the disk fills up. A
        // qemu-img that cannot measure this source only skips the check.
        let measure = try await runCollecting(executable, QemuImg.measureArguments(source, format: format), output: output)
        if measure.status.isSuccess, let measured = try? JSONValue(parsing: measure.text),
           let available = Self.availableBytes(in: PathText.folder(of: output)),
           let problem = QemuImg.spaceProblem(measure: measured, availableBytes: available, output: output) {
            throw problem
        }
        try Self.stopIfCancelled(output)

        let temporary = try Self.reserveTemporary(beside: output)
        var kept = false
        defer { if !kept { FileOps.remove(temporary) } }

        // The conversion, its progress parsed as it comes.
        let parser = ProgressParser(report: progress)
        let run: PipedRun.Outcome
        do {
            run = try await PipedRun.run(executable, QemuImg.convertArguments(source, to: temporary, format: format),
                                         mergeErrors: true, onOutput: { parser.feed($0) })
        } catch {
            throw .cannotRun(executable: executable, reason: error.description)
        }
        parser.finish()
        if run.cancelled { throw .interrupted(output: output, reason: "cancelled") }
        if case .signaled(let number) = run.status {
            throw .interrupted(output: output, reason: "qemu-img was stopped by signal \(number)")
        }
        guard run.status.isSuccess else {
            let reason = parser.lastMessage.flatMap { QemuImg.reason(in: $0, imageName: source.qemuImageName) }
            throw .conversionFailed(path: source.displayName, reason: reason ?? "qemu-img \(run.status)")
        }
        try Self.stopIfCancelled(output)

        var report: CheckReport?
        if format == .qcow2 {
            let check = try await runCollecting(executable, QemuImg.checkArguments(temporary), output: output)
            guard let json = try? JSONValue(parsing: check.text), let parsed = CheckReport(json) else {
                let reason = QemuImg.reason(in: check.errors, imageName: QemuImg.plainName(temporary))
                throw .checkUnreadable(path: output, reason: reason ?? "qemu-img check \(check.status)")
            }
            guard parsed.isClean else { throw .checkFailed(path: output, report: parsed) }
            report = parsed
        }
        try Self.stopIfCancelled(output)

        try Self.putInPlace(temporary, as: output, replace: replace)
        kept = true
        var placed = stat()
        let allocated = stat(output, &placed) == 0 ? UInt64(max(0, placed.st_blocks)) * 512 : 0
        let elapsed = ContinuousClock.now - started
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        return ConversionResult(input: source.displayName, inputFormat: source.format, output: output,
                                outputFormat: format, virtualSize: inspection.virtualSize, allocatedBytes: allocated,
                                check: report, milliseconds: milliseconds)
    }

    // MARK: Checks before anything runs

    /// The source is a readable regular file (and an archive member fits in its archive). Returns its stat.
    static func checkInput(_ source: DiskSource) throws(ConvertError) -> stat {
        let path = source.path
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT { throw .missing(path: path) }
            throw .unreadable(path: path, reason: String(cString: strerror(code)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notAFile(path: path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        close(fd)
        if let problem = source.windowProblem(archiveSize: UInt64(max(0, info.st_size))) { throw problem }
        return info
    }

    /// The output is not the input, exists only when it may be replaced (and then is a regular file), and its
    /// folder takes new files.
    static func checkOutput(_ output: String, replace: Bool, input: stat, inputName: String) throws(ConvertError) {
        // A file name is needed: not nothing, not a folder's.
        if PathText.lastComponent(output).isEmpty || output.hasSuffix("/") { throw .notAFile(path: output) }
        var existing = stat()
        if stat(output, &existing) == 0 {
            if existing.st_dev == input.st_dev && existing.st_ino == input.st_ino {
                throw .sameFile(input: inputName, output: output)
            }
            guard (existing.st_mode & S_IFMT) == S_IFREG else { throw .notAFile(path: output) }
            if !replace { throw .outputExists(path: output) }
        } else if errno != ENOENT {
            throw .outputFolder(path: output, reason: String(cString: strerror(errno)))
        }
        let folder = PathText.folder(of: output)
        var folderInfo = stat()
        guard stat(folder, &folderInfo) == 0 else {
            throw .outputFolder(path: output, reason: "its folder \(folder): \(String(cString: strerror(errno)))")
        }
        guard (folderInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw .outputFolder(path: output, reason: "\(folder) is not a folder")
        }
        guard access(folder, W_OK | X_OK) == 0 else {
            throw .outputFolder(path: output, reason: "its folder \(folder): \(String(cString: strerror(errno)))")
        }
    }

    /// Bytes an unprivileged writer may still use on the filesystem holding `folder`.
    static func availableBytes(in folder: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(folder, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }

    static func stopIfCancelled(_ output: String) throws(ConvertError) {
        if Task.isCancelled { throw .interrupted(output: output, reason: "cancelled") }
    }

    // MARK: Files

    /// An empty file of our own beside `output` for qemu-img to write (O_EXCL: never someone else's file).
    static func reserveTemporary(beside output: String) throws(ConvertError) -> String {
        let folder = PathText.folder(of: output)
        let name = PathText.lastComponent(output)
        var template = Array("\(folder)/.\(name).corral-convert-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw .outputFolder(path: output, reason: "cannot create a temporary file in \(folder): "
                + String(cString: strerror(errno)))
        }
        close(fd)
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Syncs the finished file, renames it to `output` (without `replace`: only when `output` still does not
    /// exist), and syncs the folder so the new name survives a crash.
    static func putInPlace(_ temporary: String, as output: String, replace: Bool) throws(ConvertError) {
        let fd = open(temporary, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw .io(path: output, reason: "cannot sync the new image: \(reason)")
        }
        close(fd)
        if replace {
            guard rename(temporary, output) == 0 else {
                throw .io(path: output, reason: "cannot rename the new image into place: \(String(cString: strerror(errno)))")
            }
        } else {
            // link(2) fails when the name exists: an output created meanwhile is never overwritten.
            guard link(temporary, output) == 0 else {
                let code = errno
                if code == EEXIST { throw .outputExists(path: output) }
                throw .io(path: output, reason: "cannot put the new image in place: \(String(cString: strerror(code)))")
            }
            unlink(temporary)
        }
        let folder = open(PathText.folder(of: output), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            _ = fsync(folder)
            close(folder)
        }
    }

    // MARK: Running qemu-img

    /// A short qemu-img run (info, check): stdout as text, stderr apart. Cancellation stops it.
    private func runCollecting(_ executable: String, _ arguments: [String], output: String) async throws(ConvertError)
        -> (status: ExitStatus, text: String, errors: String)
    {
        let collected = Collected()
        let run: PipedRun.Outcome
        do {
            run = try await PipedRun.run(executable, arguments, mergeErrors: false, onOutput: { collected.append($0) })
        } catch {
            throw .cannotRun(executable: executable, reason: error.description)
        }
        if run.cancelled { throw .interrupted(output: output, reason: "cancelled") }
        return (run.status, String(decoding: collected.bytes, as: UTF8.self), run.errors)
    }
}

/// Bytes gathered from a reader thread.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var gathered: [UInt8] = []
    /// More than any qemu-img info or check prints; the rest is dropped.
    static let limit = 4 << 20

    func append(_ chunk: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        if gathered.count < Self.limit { gathered += chunk.prefix(Self.limit - gathered.count) }
    }

    var bytes: [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        return gathered
    }
}

/// `QemuImgProgress` fed from the reader thread: progress goes to the caller, messages are kept for the error.
private final class ProgressParser: @unchecked Sendable {
    private let lock = NSLock()
    private var parser = QemuImgProgress()
    private var messages: [String] = []
    private var lastPercent: Double?
    private let report: DiskConverter.Progress

    init(report: @escaping DiskConverter.Progress) { self.report = report }

    func feed(_ chunk: [UInt8]) {
        lock.lock()
        let events = parser.feed(chunk)
        lock.unlock()
        handle(events)
    }

    func finish() {
        lock.lock()
        let events = parser.finish()
        lock.unlock()
        handle(events)
    }

    private func handle(_ events: [QemuImgProgress.Event]) {
        for event in events {
            switch event {
            case .progress(let percent):
                // qemu-img repeats a figure (100% twice at the end): each is reported once.
                lock.lock()
                let repeated = percent == lastPercent
                lastPercent = percent
                lock.unlock()
                if !repeated { report(percent) }
            case .message(let line):
                lock.lock()
                messages.append(line)
                if messages.count > 20 { messages.removeFirst() }
                lock.unlock()
            }
        }
    }

    /// The last lines qemu-img wrote that were not progress (its error), newline-joined.
    var lastMessage: String? {
        lock.lock()
        defer { lock.unlock() }
        return messages.isEmpty ? nil : messages.joined(separator: "\n")
    }
}
