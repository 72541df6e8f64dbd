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
        for family in ["core/", "activations/", "regularization/", "convolutional/", "pooling/", "reshaping/", "merging/"] {
            let cases = report.results.filter { $0.key.hasPrefix(family) }
            XCTAssertFalse(cases.isEmpty, family)
            for (path, r) in cases { XCTAssertEqual(r, .pass, path) }
        }
        XCTAssertEqual(report.results["models/mlp_sgd_cce"], .pass)
        for path in ["normalization/layernorm_default", "normalization/layernorm_axes_1_2", "normalization/layernorm_nocenter_eps",
                     "normalization/layernorm_rms_scaling"] {
            XCTAssertEqual(report.results[path], .pass, path)
        }
        XCTAssertGreaterThanOrEqual(report.passed, 141)
        print("conformance: \(report.summary)")
    }

    func testRunnerReportsPerCaseLines() throws {
        let report = try ConformanceRunner(root: Self.root, filter: "dense_linear").run()
        XCTAssertEqual(report.lines, ["PASS core/dense_linear"])
        XCTAssertEqual(report.summary, "1 passed, 0 failed, 0 skipped")
    }
}
