import CorralWire
import Testing

@Suite struct ClientPathTests {
    @Test(arguments: [
        ("tiny.yaml", "/home/op", "/home/op/tiny.yaml"),
        ("./profiles/../profiles/tiny.yaml", "/srv/corral", "/srv/corral/profiles/tiny.yaml"),
        ("../../../etc/x.yaml", "/a/b", "/etc/x.yaml"),
        ("/abs//path/./file.qcow2", "/ignored", "/abs/path/file.qcow2"),
        ("disk.qcow2", "/", "/disk.qcow2"),
        ("dir/", "/w", "/w/dir"),
        ("a b/ü.yaml", "/w", "/w/a b/ü.yaml"),
    ])
    func relativePathsAreResolvedAgainstTheFolder(path: String, folder: String, expected: String) {
        #expect(ClientPath.absolute(path, in: folder) == expected)
    }

    @Test func theWorkingFolderIsUsedWhenNoneIsGiven() {
        let here = ClientPath.absolute(".")
        #expect(here.hasPrefix("/"))
        #expect(ClientPath.absolute("x.yaml") == (here == "/" ? "/x.yaml" : here + "/x.yaml"))
    }
}
