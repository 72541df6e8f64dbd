import Keras
import KerasConformance
import XCTest

/// The Keras conformance fixtures (Tests/Fixtures/conformance, made by
/// Keras 3.15.1), run through the same runner as `keras-conformance`.
final class ConformanceTests: XCTestCase {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/conformance").path
    }()

    func testEveryImplementedCasePasses() throws {
        let report = try ConformanceRunner(root: Self.root).run()
        let failures = report.lines.filter { $0.hasPrefix("FAIL") }
        XCTAssertEqual(failures, [], "conformance failures")
        // The families this issue covers pass completely.
        for family in ["core/", "activations/", "regularization/", "convolutional/", "pooling/", "reshaping/", "merging/", "normalization/"] {
            let cases = report.results.filter { $0.key.hasPrefix(family) }
            XCTAssertFalse(cases.isEmpty, family)
            for (path, r) in cases { XCTAssertEqual(r, .pass, path) }
        }
        XCTAssertEqual(report.results["models/mlp_sgd_cce"], .pass)
        XCTAssertEqual(report.results["models/cnn_bn_adam_bce"], .pass, "BatchNormalization's moving statistics through fit")
        // Every case of every family passes, none is skipped: recurrent layers, wrappers and masks included.
        XCTAssertEqual(report.skipped, 0, report.lines.filter { $0.hasPrefix("SKIP") }.joined(separator: "\n"))
        XCTAssertEqual(report.passed, report.results.count)
        XCTAssertGreaterThanOrEqual(report.passed, 162)
        print("conformance: \(report.summary)")
    }

    /// The same results with the fusion passes and in-place reuse off: they change kernels and storage, not answers.
    func testEveryCasePassesWithFusionDisabled() throws {
        setenv("KERAS_DISABLE_PASSES", "fuse-loss,fuse-moments,fusion,fuse-conv-pool,fuse-gemm-updates,fuse-updates,fuse-pool-relu-grad,fuse-elementwise,in-place", 1)
        defer { unsetenv("KERAS_DISABLE_PASSES") }
        let report = try ConformanceRunner(root: Self.root).run()
        XCTAssertEqual(report.lines.filter { $0.hasPrefix("FAIL") || $0.hasPrefix("  FAIL") }, [], "conformance failures without fusion")
        XCTAssertEqual(report.passed, report.results.count)
    }

    func testRunnerReportsPerCaseLines() throws {
        let report = try ConformanceRunner(root: Self.root, filter: "dense_linear").run()
        XCTAssertEqual(report.lines, ["PASS core/dense_linear"])
        XCTAssertEqual(report.summary, "1 passed, 0 failed, 0 skipped")
    }
}
