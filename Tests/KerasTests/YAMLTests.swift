import Foundation
import Keras
import XCTest

/// The YAML subset: PyYAML's output for the model fixtures reads back to
/// the same objects and the same models; what this library emits reads back
/// to what it emitted; text outside the subset is an error with its line and column.
final class YAMLTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Keys sorted at every level, so documents compare whatever their key order.
    func canonical(_ j: JSON) -> String {
        switch j {
        case .object(let p): return "{" + p.sorted { $0.0 < $1.0 }.map { "\(JSON.string($0.0).serialized()):\(canonical($0.1))" }.joined(separator: ",") + "}"
        case .array(let a): return "[" + a.map(canonical).joined(separator: ",") + "]"
        default: return j.serialized()
        }
    }

    func testPyYAMLOutputReadsAsTheSameModel() throws {
        for name in ["mlp_sgd_cce", "embedding_lstm_sgd_mse", "cnn_bn_adam_bce"] {
            let yaml = try String(contentsOf: Self.fixtures.appendingPathComponent("yaml/\(name).yaml"), encoding: .utf8)
            let json = try String(contentsOf: Self.fixtures.appendingPathComponent("conformance/models/\(name)/model.json"), encoding: .utf8)
            XCTAssertEqual(canonical(try YAML.parse(yaml)), canonical(try JSON.parse(json)), name)
            Naming.reset()
            let a = try modelFromYAML(yaml)
            Naming.reset()
            let b = try modelFromJSON(json)
            XCTAssertEqual(a.toJSON(), b.toJSON(), name)
            // What this library emits reads back unchanged.
            XCTAssertEqual(try YAML.parse(a.toYAML()).serialized(), a.kerasSerialized.serialized(), name)
            Naming.reset()
            XCTAssertEqual(try modelFromYAML(a.toYAML()).toJSON(), a.toJSON(), name)
        }
    }

    func testScalarsAndFlowCollections() throws {
        let doc = """
        # a comment
        a: 1
        b: -2.5e-3
        c: 'it''s'
        d: "tab\\there"
        e: [null, 6, true, ~]
        f: {x: 1, y: [a, b]}
        g:
        - k: v
          l: [1,
            2]
        - plain text with: colon
        h: .inf
        """
        let v = try YAML.parse(doc)
        XCTAssertEqual(v.serialized(), #"{"a": 1, "b": -0.0025, "c": "it's", "d": "tab\there", "e": [null, 6, true, null], "f": {"x": 1, "y": ["a", "b"]}, "g": [{"k": "v", "l": [1, 2]}, {"plain text with": "colon"}], "h": Infinity}"#)
        for s in ["null", "true", "1e5", "-x", "", "a: b", "#c", "x\ny", "it's"] {
            XCTAssertEqual(try YAML.parse(YAML.emit(["k": .string(s)])).serialized(), JSON.object([("k", .string(s))]).serialized(), "string \(s.debugDescription)")
        }
    }

    func testOutsideTheSubsetIsAnErrorWithLineAndColumn() {
        let cases: [(String, String)] = [
            ("a: [1, 2\nb: 3\n", "unclosed ["), ("a: &anchor 1\n", "line 1, column 4"), ("a: 1\n  b: 2\n", "line 2"),
            ("a: 1\na: 2\n", "duplicate key 'a'"), ("- 1\n---\n- 2\n", "more than one document"), ("a: 'open\n", "unclosed single quote"),
        ]
        for (text, want) in cases {
            XCTAssertThrowsError(try YAML.parse(text), text) { e in XCTAssertTrue("\(e)".contains(want), "\(text.debugDescription): \(e)") }
        }
        XCTAssertThrowsError(try modelFromYAML("class_name: NoSuchModel\nconfig: {}\n")) { e in XCTAssertTrue("\(e)".contains("unknown layer class 'NoSuchModel'"), "\(e)") }
    }
}
