#if canImport(Glibc)
import Glibc
#endif

/// The last lines of a (serial log) file, read backwards in chunks so a large log costs
/// only what is shown.
struct SerialTail: Equatable {
    var lines: [String]
    /// Where following should resume: just after the last complete line shown (or counted).
    var resumeOffset: Int

    /// At most this much is read backwards, whatever `lines` asks for.
    static let maxBytes = 8 << 20

    /// `includePartial` shows a last line that has no newline yet; a follower leaves it to be
    /// delivered once complete.
    static func read(path: String, lines count: Int, includePartial: Bool) -> SerialTail {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return SerialTail(lines: [], resumeOffset: 0) }
        defer { close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size > 0 else { return SerialTail(lines: [], resumeOffset: 0) }

        var bytes: [UInt8] = []
        var start = size
        let chunk = 65536
        // Read until the text holds count+1 newlines (one more than needed bounds the first line).
        var newlines = 0
        while start > 0, bytes.count < maxBytes, newlines <= count {
            let length = min(chunk, start)
            start -= length
            var buffer = [UInt8](repeating: 0, count: length)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, length, off_t(start)) }
            guard n == length else { break }
            newlines += buffer.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            bytes.insert(contentsOf: buffer, at: 0)
        }

        let lastNewline = bytes.lastIndex(of: UInt8(ascii: "\n"))
        let completeEnd = lastNewline.map { $0 + 1 } ?? 0
        var texts = bytes[..<completeEnd].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .dropLast()
            .map(Self.text)
        // The first piece may be cut in the middle when reading stopped before the file's start.
        if start > 0, !texts.isEmpty { texts.removeFirst() }
        let partial = bytes[completeEnd...]
        if includePartial, !partial.isEmpty { texts.append(Self.text(partial)) }
        return SerialTail(lines: Array(texts.suffix(count)), resumeOffset: start + completeEnd)
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        var line = bytes
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return String(decoding: line, as: UTF8.self)
    }
}
