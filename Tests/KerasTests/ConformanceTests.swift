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
        // Recurrent layers and wrappers: every unmasked case (masks come with the masking work).
        for (path, r) in report.results where path.hasPrefix("rnn/") && !path.hasPrefix("rnn/masked_") {
            XCTAssertEqual(r, .pass, path)
        }
        XCTAssertGreaterThanOrEqual(report.passed, 158)
        print("conformance: \(report.summary)")
    }

    func testRunnerReportsPerCaseLines() throws {
        let report = try ConformanceRunner(root: Self.root, filter: "dense_linear").run()
        XCTAssertEqual(report.lines, ["PASS core/dense_linear"])
        XCTAssertEqual(report.summary, "1 passed, 0 failed, 0 skipped")
    }
}
