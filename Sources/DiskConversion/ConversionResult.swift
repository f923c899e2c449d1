import CorralModel
import JSON

/// A finished conversion: OUT is in place (and, for qcow2, passed `qemu-img check`).
public struct ConversionResult: Sendable, Equatable {
    /// The source as messages name it (`DiskSource.displayName`).
    public var input: String
    public var inputFormat: SourceFormat
    public var output: String
    public var outputFormat: DiskFormat
    /// The disk's size as the guest sees it (the same before and after).
    public var virtualSize: UInt64
    /// What OUT takes on the host's disk (allocated blocks; sparse regions take nothing).
    public var allocatedBytes: UInt64
    /// `qemu-img check` of a qcow2 output (nil for raw, which has nothing to check).
    public var check: CheckReport?
    public var milliseconds: Int64

    public init(input: String, inputFormat: SourceFormat, output: String, outputFormat: DiskFormat,
                virtualSize: UInt64, allocatedBytes: UInt64, check: CheckReport?, milliseconds: Int64) {
        self.input = input
        self.inputFormat = inputFormat
        self.output = output
        self.outputFormat = outputFormat
        self.virtualSize = virtualSize
        self.allocatedBytes = allocatedBytes
        self.check = check
        self.milliseconds = milliseconds
    }

    /// `--json`'s result object (docs/convert.md).
    public var json: JSONValue {
        var object: JSONObject = [
            "input": .string(input), "inputFormat": .string(inputFormat.rawValue),
            "output": .string(output), "outputFormat": .string(outputFormat.rawValue),
            "virtualSize": .int(Int64(clamping: virtualSize)), "allocatedBytes": .int(Int64(clamping: allocatedBytes)),
            "milliseconds": .int(milliseconds),
        ]
        if let check {
            object["check"] = [
                "clean": .bool(check.isClean), "corruptions": .int(check.corruptions), "leaks": .int(check.leaks),
                "checkErrors": .int(check.checkErrors),
            ]
        } else {
            object["check"] = .null
        }
        return .object(object)
    }

    /// `disk.vmdk (vmdk) → disk.qcow2 (qcow2): 20.0 GiB disk, 3.1 GiB allocated, 41.2 s, qemu-img check clean`.
    public var summary: String {
        var line = "\(input) (\(inputFormat.rawValue)) → \(output) (\(outputFormat.rawValue)): "
        line += SizeText.binary(virtualSize) + " disk, " + SizeText.binary(allocatedBytes) + " allocated, "
        line += "\(milliseconds / 1000).\((milliseconds % 1000) / 100) s"
        if check != nil { line += ", qemu-img check clean" }
        return line
    }
}

/// One line of `--json` output (NDJSON): progress while it runs, then the result or the error.
public enum ConvertStreamLine {
    /// `{"progress":{"percent":12.34}}`.
    public static func progress(_ percent: Double) -> JSONValue {
        ["progress": ["percent": .double((percent * 100).rounded() / 100)]]
    }

    /// `{"result":{…}}`.
    public static func result(_ result: ConversionResult) -> JSONValue { ["result": result.json] }

    /// `{"error":{"code":"refused","message":"…"}}`.
    public static func error(_ error: ConvertError) -> JSONValue {
        ["error": ["code": .string(error.code), "message": .string(error.description)]]
    }
}

/// Sizes for people: `512 B`, `64.0 MiB`, `1.5 GiB`.
public enum SizeText {
    public static func binary(_ bytes: UInt64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let tenths = Int64((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}
