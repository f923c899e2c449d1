import Foundation

/// The dashboard's files, read once when the daemon starts (`scripts/build-web-assets` writes them): the page, the
/// bundle of its script with xterm.js and noVNC, and its style sheet. Nothing else is served, and nothing is read
/// from disk per request.
public struct WebAssets: Sendable, Equatable {
    public struct File: Sendable, Equatable {
        public let contentType: String
        public let bytes: [UInt8]

        public init(contentType: String, bytes: [UInt8]) {
            self.contentType = contentType
            self.bytes = bytes
        }
    }

    public static let page = "index.html"
    /// URL path (under `/assets/`) → file name and type.
    public static let served: [String: String] = [
        "dashboard.js": "text/javascript; charset=utf-8",
        "dashboard.css": "text/css; charset=utf-8",
    ]
    /// Larger files are refused: a bundle is a few hundred KiB.
    public static let maxFileBytes = 16 << 20

    public let folder: String
    public let index: File
    public let assets: [String: File]

    public init(index: File, assets: [String: File], folder: String = "") {
        self.index = index
        self.assets = assets
        self.folder = folder
    }

    /// Reads every file from `folder`; the error names the one missing and how to build them.
    public static func load(from folder: String) throws(WebAssetsError) -> WebAssets {
        func read(_ name: String, _ type: String) throws(WebAssetsError) -> File {
            let path = folder + "/" + name
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let data = FileManager.default.contents(atPath: path)
            else { throw .missing(path) }
            let size = (attributes[.size] as? NSNumber)?.intValue ?? data.count
            guard size <= maxFileBytes, data.count <= maxFileBytes else { throw .tooLarge(path, data.count) }
            return File(contentType: type, bytes: Array(data))
        }
        let index = try read(page, "text/html; charset=utf-8")
        var assets: [String: File] = [:]
        for (name, type) in served.sorted(by: { $0.key < $1.key }) { assets[name] = try read(name, type) }
        return WebAssets(index: index, assets: assets, folder: folder)
    }

    /// Where the files are when no folder is given: `$CORRAL_WEB_ASSETS`; in a build tree
    /// (`.build/TRIPLE/CONFIG/corrald`) the `.build/web` that `scripts/build-web-assets` writes; under an install
    /// prefix (`PREFIX/bin/corrald`) `PREFIX/share/corral/web`; `/usr/share/corral/web`. The first that holds
    /// `index.html`, else the build tree's (which the error then names).
    public static func defaultFolder(environment: [String: String], executable: String) -> String {
        if let folder = environment["CORRAL_WEB_ASSETS"], !folder.isEmpty { return folder }
        let folder = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        let buildTree = folder.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("web").path
        let prefix = folder.deletingLastPathComponent().appendingPathComponent("share/corral/web").path
        for candidate in [buildTree, prefix, "/usr/share/corral/web"]
        where FileManager.default.fileExists(atPath: candidate + "/" + page) {
            return candidate
        }
        return buildTree
    }
}

public enum WebAssetsError: Error, Sendable, Equatable, CustomStringConvertible {
    case missing(String)
    case tooLarge(String, Int)

    public var description: String {
        switch self {
        case .missing(let path):
            return "--web: the dashboard file \(path) is missing: build the files with scripts/build-web-assets DIR "
                + "and pass --web-assets DIR"
        case .tooLarge(let path, let size):
            return "--web: \(path) has \(size) bytes, more than the \(WebAssets.maxFileBytes) a dashboard file may have"
        }
    }
}
