// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "thin",
  dependencies: [.package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2")],
  targets: [.executableTarget(name: "thin", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")])])
