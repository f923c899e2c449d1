import Testing
import UnixSockets
#if canImport(Glibc)
import Glibc
#endif

/// `sd_listen_fds` semantics: which descriptors a process was given, from its environment and pid.
struct SocketActivationParsingTests {
    @Test func noVariablesMeansNotActivated() throws {
        #expect(try SocketActivation.descriptors(environment: [:], pid: 42) == [])
    }

    @Test func descriptorsStartAtThreeForTheNamedPid() throws {
        #expect(try SocketActivation.descriptors(environment: ["LISTEN_FDS": "2", "LISTEN_PID": "42"], pid: 42) == [3, 4])
        #expect(try SocketActivation.descriptors(environment: ["LISTEN_FDS": "0", "LISTEN_PID": "42"], pid: 42) == [])
    }

    @Test func anotherProcessesVariablesAreIgnored() throws {
        // A parent's activation leaked into our environment: the sockets are not ours.
        #expect(try SocketActivation.descriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "41"], pid: 42) == [])
    }

    @Test func malformedOrExcessiveValuesAreRefusedNamingTheVariable() {
        #expect(throws: SocketActivation.Failure.malformed(variable: "LISTEN_FDS", value: "many")) {
            try SocketActivation.descriptors(environment: ["LISTEN_FDS": "many", "LISTEN_PID": "42"], pid: 42)
        }
        #expect(throws: SocketActivation.Failure.malformed(variable: "LISTEN_PID", value: "")) {
            try SocketActivation.descriptors(environment: ["LISTEN_FDS": "1"], pid: 42)
        }
        #expect(throws: SocketActivation.Failure.malformed(variable: "LISTEN_FDS", value: "-1")) {
            try SocketActivation.descriptors(environment: ["LISTEN_FDS": "-1", "LISTEN_PID": "42"], pid: 42)
        }
        #expect(throws: SocketActivation.Failure.tooMany(1000)) {
            try SocketActivation.descriptors(environment: ["LISTEN_FDS": "1000", "LISTEN_PID": "42"], pid: 42)
        }
        #expect(SocketActivation.Failure.tooMany(1000).description.contains("LISTEN_FDS=1000"))
    }

    @Test func aPassedDescriptorThatIsNotAUnixListenerIsRefused() throws {
        // A pipe is not a socket at all.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(throws: SocketActivation.Failure.self) { try SocketActivation.unixListenerPath(ends[0]) }
    }

    @Test func aListeningUnixSocketNamesItsPathAndABoundOneIsNotListening() throws {
        let path = "/tmp/corral-act-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        let listener = try UnixStreamListen.listen(path: path)
        #expect(try SocketActivation.unixListenerPath(listener) == path)
        close(listener)
        unlink(path)
        let bound = try UnixStreamListen.bind(path: path)
        defer { close(bound) }
        #expect(throws: SocketActivation.Failure.notAUnixListener(descriptor: bound, why: "not listening")) {
            try SocketActivation.unixListenerPath(bound)
        }
    }
}
