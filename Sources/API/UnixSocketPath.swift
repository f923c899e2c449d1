import CorralWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's side of its socket path: checks before binding, permissions after, removal at exit.
enum DaemonSocket {
    /// Creates the parent folder (0755) when missing; removes a stale socket file; refuses when
    /// another daemon answers or the path is something else.
    static func prepare(_ path: String) throws(DaemonError) {
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty { try makeFolders(parent) }
        switch SocketProbe.probe(path) {
        case .absent:
            return
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw .invalidConfiguration("cannot remove stale socket \(path): \(String(cString: strerror(errno)))")
            }
        case .answers:
            throw .alreadyRunning(path)
        case .notASocket:
            throw .invalidConfiguration("\(path) exists and is not a socket; remove it or choose another --socket")
        case .failed(let message):
            throw .invalidConfiguration(message)
        }
    }

    /// Only the owner (root) may talk to the daemon through the socket.
    static func restrict(_ path: String) {
        chmod(path, 0o600)
    }

    /// Where the listener binds before the socket appears at its real path.
    ///
    /// `bind(2)` creates the socket file with the mode the process umask leaves (0755 under the usual
    /// 022), so a socket bound at its final path is connectable by anyone until it is chmod-ed to 0600.
    /// Changing the umask around the bind would not do: the umask is process-wide, and the supervisor
    /// (relaunching a crashed VM, creating state folders) runs concurrently with the listener's start.
    /// Instead the socket is bound inside a fresh folder of mode 0700 next to the final path (only the
    /// owner can reach anything in it), chmod-ed to 0600 there, then renamed into place: the path
    /// never names a socket with a wider mode. When the staging path would not fit a Unix socket
    /// address (or the folder cannot be made), it falls back to binding in place and chmod-ing.
    struct Staging: Sendable {
        let finalPath: String
        /// The private folder, nil when binding in place.
        let folder: String?

        var bindPath: String { folder.map { $0 + "/s" } ?? finalPath }

        init(finalPath: String) {
            self.finalPath = finalPath
            let slash = finalPath.lastIndex(of: "/")
            let parent = slash.map { String(finalPath[..<$0]) } ?? "."
            let template = (parent.isEmpty ? "" : parent) + "/.corral-XXXXXX"
            // sun_path holds 108 bytes including the terminating NUL.
            guard template.utf8.count + 2 < 108 else {
                self.folder = nil
                return
            }
            var bytes = Array(template.utf8CString)
            // mkdtemp creates the folder with mode 0700.
            self.folder = mkdtemp(&bytes).map { String(cString: $0) }
        }

        /// Restricts the bound socket and moves it to its real path.
        func publish() -> String? {
            DaemonSocket.restrict(bindPath)
            guard let folder else { return nil }
            guard rename(bindPath, finalPath) == 0 else {
                return "cannot move the socket from \(bindPath) to \(finalPath): \(String(cString: strerror(errno)))"
            }
            rmdir(folder)
            return nil
        }

        /// Removes whatever staging left behind (after a failed start).
        func cleanUp() {
            guard let folder else { return }
            DaemonSocket.remove(bindPath)
            rmdir(folder)
        }
    }

    /// Marks every listening socket of this process close-on-exec.
    ///
    /// SwiftNIO creates its sockets without `SOCK_CLOEXEC`, so a QEMU the supervisor launches would
    /// inherit the daemon's listeners. After the daemon dies, such a QEMU keeps the Unix socket
    /// "answering" (connections queue and are never accepted): clients hang and the next daemon
    /// refuses to start because another one seems to answer. Called once each listener is bound.
    static func closeListenersOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            guard let fd = Int32(entry), fd > 2 else { continue }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { continue }
            var listening: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening != 0 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// Removes the socket file when it is (still) a socket.
    static func remove(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }

    /// mkdir -p with 0755 for the folders it creates; existing folders keep their mode.
    private static func makeFolders(_ path: String) throws(DaemonError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw .invalidConfiguration("cannot create \(partial): \(String(cString: strerror(errno)))")
            }
        }
    }
}
