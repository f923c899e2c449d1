import FuzzTargets

#if canImport(Glibc)
import Glibc
#endif

// libFuzzer's entry points. One binary serves every target: `CORRAL_FUZZ_TARGET` names the one to run (scripts/fuzz
// sets it), so the sanitized code is linked once.

nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    let name = getenv("CORRAL_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        printError("corral-fuzz: set CORRAL_FUZZ_TARGET to one of: \(names) (got '\(name)')")
        exit(2)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selected else { return 0 }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try target.run(bytes)
    } catch {
        // A broken property is a crash to libFuzzer: it keeps the input as a reproducer.
        printError("corral-fuzz: \(target.rawValue): property failed: \(error)")
        abort()
    }
    return 0
}

private func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}
