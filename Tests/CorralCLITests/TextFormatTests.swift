@testable import CorralCLI
import Testing

/// The CLI's number and time formatting, which replaced Foundation's `String(format:)` and `DateFormatter`.
struct TextFormatTests {
    @Test func fixedRoundsHalfAwayFromZeroToTheDigitsAsked() {
        #expect(TextFormat.fixed(1.25, 1) == "1.3")
        #expect(TextFormat.fixed(1.24, 1) == "1.2")
        #expect(TextFormat.fixed(118.349, 1) == "118.3")
        #expect(TextFormat.fixed(0.05, 2) == "0.05")
        #expect(TextFormat.fixed(2, 2) == "2.00")
        #expect(TextFormat.fixed(99.5, 0) == "100")
        #expect(TextFormat.fixed(-1.25, 1) == "-1.3")
        #expect(TextFormat.fixed(-0.04, 1) == "0.0")
        #expect(TextFormat.fixed(.infinity, 1) == "inf")
    }

    @Test func zeroPaddedAndPadded() {
        #expect(TextFormat.zeroPadded(5, 2) == "05")
        #expect(TextFormat.zeroPadded(123, 2) == "123")
        #expect(TextFormat.zeroPadded(7, 3) == "007")
        #expect(TextFormat.padded("ab", 4) == "ab  ")
        #expect(TextFormat.padded("abcdef", 4) == "abcdef", "never cut")
    }

    @Test func localTimestampHasMillisecondsAndTheSecondsOfTheInstant() {
        // 1 700 000 000 is 22:13:20 UTC; time zones move hours and minutes, never seconds.
        let text = TextFormat.localTimestamp(1_700_000_000.0456)
        #expect(text.wholeMatch(of: /\d{4}-\d\d-\d\d \d\d:\d\d:20\.045/) != nil, "\(text)")
    }

    @Test func statusAndTuningFigures() {
        #expect(StatusText.duration(45) == "45s")
        #expect(StatusText.duration(185) == "3m05s")
        #expect(StatusText.duration(7620) == "2h07m")
        #expect(StatusText.duration(3 * 86400 + 4 * 3600) == "3d04h")
        #expect(StatusText.bytes(512) == "512 B")
        #expect(StatusText.bytes(768 << 20) == "768 MiB")
        #expect(StatusText.bytes(1536 << 20) == "1.5 GiB")
        #expect(TuningText.ratio(0.75) == "0.75")
        #expect(TuningText.ratio(1.5) == "1.5")
        #expect(TuningText.ratio(4) == "4")
        #expect(TuningText.mebibytes(231 << 20) == "231 MiB")
        #expect(TuningText.mebibytes((231 << 20) + (400 << 10)) == "231.4 MiB")
        #expect(StatusText.aligned([["a", "bb", "c"], ["ccc", "d", "e"]]) == ["a    bb  c", "ccc  d   e"])
    }

    @Test func shellQuoteQuotesOnlyWhatNeedsIt() {
        #expect(Terminal.shellQuote("-device") == "-device")
        #expect(Terminal.shellQuote("{\"driver\":\"virtio-net-pci\"}") == "'{\"driver\":\"virtio-net-pci\"}'")
        #expect(Terminal.shellQuote("it's") == #"'it'\''s'"#)
        #expect(Terminal.shellQuote("") == "''")
    }
}
