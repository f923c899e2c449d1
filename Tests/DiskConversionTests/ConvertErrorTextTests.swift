import CorralModel
import DiskConversion
import JSON
import Testing

/// Every message names the file and says what is wrong (and what to do, where there is something to do).
@Suite struct ConvertErrorTextTests {
    @Test(arguments: [
        (ConvertError.missing(path: "web.vmdk"), "web.vmdk: no such file", "missing"),
        (.unreadable(path: "web.vmdk", reason: "Permission denied"), "web.vmdk: cannot read it: Permission denied",
         "unreadable"),
        (.notAFile(path: "/srv"), "/srv: is not a regular file (a folder or a device?)", "not-a-file"),
        (.sameFile(input: "a.qcow2", output: "a.qcow2"), "a.qcow2: the input and the output are the same file",
         "same-file"),
        (.sameFile(input: "a.qcow2", output: "link.qcow2"), "link.qcow2: is the input a.qcow2 itself; write to another file",
         "same-file"),
        (.outputExists(path: "web.qcow2"), "web.qcow2: already exists; give --force to replace it", "output-exists"),
        (.outputFolder(path: "/nope/web.qcow2", reason: "its folder /nope: No such file or directory"),
         "/nope/web.qcow2: cannot write there: its folder /nope: No such file or directory", "output-folder"),
        (.refused(path: "web.vmdk", format: .vmdk, reason: "invalid VMDK image descriptor"),
         "web.vmdk: qemu-img cannot open it as vmdk: invalid VMDK image descriptor", "refused"),
        (.conversionFailed(path: "web.vmdk", reason: "error while reading at byte 0: Input/output error"),
         "web.vmdk: conversion failed: error while reading at byte 0: Input/output error", "conversion-failed"),
        (.interrupted(output: "web.qcow2", reason: "interrupted (Ctrl-C)"),
         "web.qcow2: not written: interrupted (Ctrl-C); nothing was left behind", "interrupted"),
        (.cannotRun(executable: "qemu-img", reason: "not found (install qemu-utils, or put qemu-img in PATH)"),
         "cannot run qemu-img: not found (install qemu-utils, or put qemu-img in PATH)", "cannot-run"),
        (.checkUnreadable(path: "w.qcow2", reason: "qemu-img check exited with status 1"),
         "w.qcow2: qemu-img check of the new image failed: qemu-img check exited with status 1; it was not kept",
         "check-unreadable"),
    ])
    func messages(error: ConvertError, text: String, code: String) {
        #expect(error.description == text)
        #expect(error.code == code)
    }

    @Test func invalidInputAgainstFailure() {
        #expect(ConvertError.outputExists(path: "x").isInvalidInput)
        #expect(ConvertError.sameFile(input: "x", output: "x").isInvalidInput)
        #expect(!ConvertError.refused(path: "x", format: .vdi, reason: "y").isInvalidInput)
        #expect(!ConvertError.missing(path: "x").isInvalidInput)
    }

    @Test func jsonLines() {
        #expect(ConvertStreamLine.progress(12.345).compactText == #"{"progress":{"percent":12.35}}"#)
        #expect(ConvertStreamLine.error(.missing(path: "a.vdi")).compactText
            == #"{"error":{"code":"missing","message":"a.vdi: no such file"}}"#)
        let result = ConversionResult(input: "a.vdi", inputFormat: .vdi, output: "a.qcow2", outputFormat: .qcow2,
                                      virtualSize: 67_108_864, allocatedBytes: 393_216,
                                      check: CheckReport(allocatedClusters: 1, totalClusters: 1024), milliseconds: 1234)
        #expect(ConvertStreamLine.result(result).compactText == #"{"result":{"input":"a.vdi","inputFormat":"vdi","output":"a.qcow2","outputFormat":"qcow2","virtualSize":67108864,"allocatedBytes":393216,"milliseconds":1234,"check":{"clean":true,"corruptions":0,"leaks":0,"checkErrors":0}}}"#)
        #expect(result.summary == "a.vdi (vdi) → a.qcow2 (qcow2): 64.0 MiB disk, 384.0 KiB allocated, 1.2 s, qemu-img check clean")
    }
}
