import ArgumentParser
import CorralModel
import CorralWire
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

struct ScreenshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "screenshot",
        abstract: "Save a PNG of a VM's screen (its profile needs display:), taken with QMP screendump.")

    @Argument(help: "VM name.") var name: String
    @Argument(help: "The PNG file to write (replaced atomically).") var output: String
    @OptionGroup var socket: DaemonSocketOption

    func validate() throws {
        if output.isEmpty { throw ValidationError("OUT must not be empty") }
    }

    func run() async throws {
        let png = try await DaemonCall.run(socket: socket.resolved) { try await $0.screenshot(name) }
        let path = ClientPath.absolute(output)
        do {
            try Data(png).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ValidationError("cannot write \(path): \(error)")
        }
        Terminal.out("\(name): screenshot saved to \(path) (\(png.count) bytes)")
    }
}
