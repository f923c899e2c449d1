import CorralModel
import Foundation
import JSON
import QMP

/// The VM's screen: `screendump` into a file the daemon made, handed to QEMU as an fd set (an unprivileged QEMU
/// reaches no path of the daemon's).
extension ManagedVM {
    /// A screenshot larger than this is refused (a 4K RGB frame compresses far below it).
    static let maxScreenshotBytes = 64 << 20

    func screenshot() async throws(ControlError) -> [UInt8] {
        try check(.qmp)
        guard config.profile.display.map({ $0.vga != .none }) == true else {
            throw .conflict("\(name) has no display: give it one in its profile (display: { vga: std })")
        }
        guard let vm = running else { throw .conflict("\(name) has no QEMU running") }
        let path = paths.folder + "/screenshot-\(UInt32.random(in: 0...UInt32.max)).png"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .internalError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { FileOps.remove(path) }
        let set: Int32
        do {
            defer { close(fd) }
            set = try await vm.qmp.addFD(fd, opaque: "screenshot", timeout: .seconds(5))
        } catch {
            throw .qmpFailed(error, command: "add-fd")
        }
        let dumped: Result<JSONValue, QMPError>
        do {
            dumped = .success(try await vm.qmp.execute("screendump", ["filename": .string("/dev/fdset/\(set)"),
                                                                      "format": "png"], timeout: .seconds(30)))
        } catch {
            dumped = .failure(error)
        }
        // QEMU keeps no descriptor of the daemon's file.
        try? await vm.qmp.removeFD(set: set, timeout: .seconds(5))
        if case .failure(let error) = dumped { throw .qmpFailed(error, command: "screendump") }
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
            throw .internalError("screendump wrote nothing")
        }
        guard data.count <= Self.maxScreenshotBytes else { throw .internalError("the screenshot is too large") }
        return Array(data)
    }
}
