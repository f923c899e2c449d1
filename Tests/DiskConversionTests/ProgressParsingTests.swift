import DiskConversion
import Testing

@Suite struct ProgressParsingTests {
    /// What qemu-img 7.2 writes for `convert -p` (captured), ending in `\r\n`.
    static let captured = Array("    (0.00/100%)\r    (12.50/100%)\r    (50.01/100%)\r    (100.00/100%)\r\n".utf8)
    static let expected: [QemuImgProgress.Event] = [.progress(0), .progress(12.5), .progress(50.01), .progress(100)]

    @Test func wholeOutputAtOnce() {
        var parser = QemuImgProgress()
        #expect(parser.feed(Self.captured) + parser.finish() == Self.expected)
    }

    @Test func oneByteAtATime() {
        var parser = QemuImgProgress()
        var events: [QemuImgProgress.Event] = []
        for byte in Self.captured { events += parser.feed([byte]) }
        #expect(events + parser.finish() == Self.expected)
    }

    /// Every split into two chunks, and random chunkings, give the same events.
    @Test func chunksSplitAnywhere() {
        for cut in 0...Self.captured.count {
            var parser = QemuImgProgress()
            let events = parser.feed(Self.captured[..<cut]) + parser.feed(Self.captured[cut...]) + parser.finish()
            #expect(events == Self.expected, "cut at \(cut)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var parser = QemuImgProgress()
            var events: [QemuImgProgress.Event] = []
            var rest = Self.captured[...]
            while !rest.isEmpty {
                let n = Int.random(in: 1...7, using: &generator)
                events += parser.feed(rest.prefix(n))
                rest = rest.dropFirst(n)
            }
            #expect(events + parser.finish() == Self.expected)
        }
    }

    @Test func anUnfinishedFigureWaitsForItsEnd() {
        var parser = QemuImgProgress()
        #expect(parser.feed(Array("    (12.3".utf8)).isEmpty)
        #expect(parser.feed(Array("4/100%)\r".utf8)) == [.progress(12.34)])
        #expect(parser.feed(Array("    (99".utf8)).isEmpty)
        #expect(parser.finish() == [.message("(99")])
    }

    @Test func errorLinesBetweenFiguresAreMessages() {
        var parser = QemuImgProgress()
        let text = "    (0.00/100%)\r    (3.00/100%)\rqemu-img: error while reading at byte 1048576: Input/output error\n"
        #expect(parser.feed(Array(text.utf8)) == [
            .progress(0), .progress(3),
            .message("qemu-img: error while reading at byte 1048576: Input/output error"),
        ])
    }

    @Test func figuresThatAreNotProgress() {
        #expect(QemuImgProgress.percent(in: "(12.34/100%)") == 12.34)
        #expect(QemuImgProgress.percent(in: "(100/100%)") == 100)
        #expect(QemuImgProgress.percent(in: "(120.00/100%)") == 100)
        #expect(QemuImgProgress.percent(in: "(/100%)") == nil)
        #expect(QemuImgProgress.percent(in: "(1e3/100%)") == nil)
        #expect(QemuImgProgress.percent(in: "(nan/100%)") == nil)
        #expect(QemuImgProgress.percent(in: "(12.34/50%)") == nil)
        #expect(QemuImgProgress.percent(in: "12.34%") == nil)
    }

    /// A writer that never ends its line cannot grow the buffer without bound.
    @Test func endlessLineIsCut() {
        var parser = QemuImgProgress()
        let events = parser.feed([UInt8](repeating: UInt8(ascii: "x"), count: QemuImgProgress.maxLineBytes * 3))
        #expect(events.count == 3)
        #expect(parser.finish().isEmpty)
    }
}
