import Foundation
import XCTest

/// The package as Swift users add it: a consumer package depends on a tagged
/// git clone of this repository by file:// URL, builds, and trains a model
/// through `import Keras` (issue 13, item 6). SwiftPM refuses a dependency
/// with unsafe flags under tools version 6.0; Package.swift declares 6.2, and
/// Package@swift-6.0.swift differs from it only in dropping those flags.
final class ConsumerPackageTests: XCTestCase {
    static let root = ToolTests.packageRoot

    @discardableResult
    func shell(_ args: [String], in dir: URL, timeout: TimeInterval = 900) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        p.currentDirectoryURL = dir
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        final class Sink: @unchecked Sendable { var data = Data() }
        let sink = Sink()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { sink.data = out.fileHandleForReading.readDataToEndOfFile(); done.signal() }
        if done.wait(timeout: .now() + timeout) == .timedOut { p.terminate(); XCTFail("\(args) timed out") }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: sink.data, as: UTF8.self))
    }

    func testManifestsDifferOnlyInTheUnsafeFlags() throws {
        let current = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let older = try String(contentsOf: Self.root.appendingPathComponent("Package@swift-6.0.swift"), encoding: .utf8)
        XCTAssertTrue(current.hasPrefix("// swift-tools-version:6.2"))
        XCTAssertTrue(older.hasPrefix("// swift-tools-version:6.0"))
        XCTAssertTrue(current.contains(".unsafeFlags("))
        XCTAssertFalse(older.contains(".unsafeFlags("))
        // Everything from the package declaration on is the same.
        func body(_ s: String) -> Substring { s[s.range(of: "let package = Package(")!.lowerBound...] }
        XCTAssertEqual(body(current), body(older))
    }

    func testAConsumerPackageBuildsAgainstATaggedClone() throws {
        try XCTSkipIf(ProcessInfo.processInfo.environment["KERAS_SKIP_CONSUMER_TEST"] != nil, "KERAS_SKIP_CONSUMER_TEST is set")
        let fm = FileManager.default
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("keras-consumer-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: work) }
        let repo = work.appendingPathComponent("keras"), app = work.appendingPathComponent("app")
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        let clone = try shell(["git", "clone", "-q", Self.root.path, repo.path], in: work)
        try XCTSkipIf(clone.status != 0, "git clone of the package failed (no git history here?): \(clone.output)")
        try shell(["git", "-c", "user.name=t", "-c", "user.email=t@t", "tag", "9.9.9"], in: repo)
        try fm.createDirectory(at: app.appendingPathComponent("Sources/App"), withIntermediateDirectories: true)
        try """
        // swift-tools-version:6.0
        import PackageDescription
        let package = Package(
            name: "App",
            dependencies: [.package(url: "file://\(repo.path)", from: "9.9.9")],
            targets: [.executableTarget(name: "App", dependencies: [.product(name: "Keras", package: "keras")], path: "Sources/App")]
        )
        """.write(to: app.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try """
        import Keras
        let model = try Sequential([Dense(4, activation: "relu", inputShape: [3]), Dense(2, activation: "softmax")])
        try model.compile(optimizer: "adam", loss: "categorical_crossentropy")
        let x = try Tensor([Float](repeating: 0.5, count: 12), shape: [4, 3])
        let y = try Tensor([1, 0, 0, 1, 1, 0, 0, 1], shape: [4, 2])
        let history = try model.fit(x, y, epochs: 2, verbose: 0)
        print("epochs:", history.history["loss"]!.count, "output:", try model.outputShape)
        """.write(to: app.appendingPathComponent("Sources/App/main.swift"), atomically: true, encoding: .utf8)
        let build = try shell(["swift", "build", "--product", "App"], in: app)
        XCTAssertEqual(build.status, 0, String(build.output.suffix(3000)))
        let run = try shell([app.appendingPathComponent(".build/debug/App").path], in: app, timeout: 120)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("epochs: 2 output: [nil, Optional(2)]"), run.output)
    }
}
