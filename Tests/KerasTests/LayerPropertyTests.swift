@testable import Keras
import XCTest

/// Layer and model properties as Keras reports them, and errors (never traps)
/// where Keras has none to give.
final class LayerPropertyTests: XCTestCase {
    func testModelsReportTheirOwnInputsAndOutputs() throws {
        let model = try Sequential([Dense(32, activation: "relu", inputShape: [16]), Dense(10)])
        XCTAssertEqual(try model.outputShape, [nil, 10])
        XCTAssertEqual(try model.inputShape, [nil, 16])
        XCTAssertEqual(try model.output.shape, [nil, 10])
        XCTAssertEqual(try model.input.shape, [nil, 16])
        let x = Input(shape: [5]), y = try Dense(3)(x)
        let functional = try Model(inputs: x, outputs: y)
        XCTAssertEqual(try functional.outputShape, [nil, 3])
        XCTAssertEqual(try functional.inputShape, [nil, 5])
        // Called on a new tensor, the model keeps its own input and output.
        _ = try functional(Input(shape: [5]))
        XCTAssertEqual(try functional.outputShape, [nil, 3])
        // A Sequential without an input shape has no input yet: an error, not a trap.
        let empty = try Sequential([Dense(2)])
        XCTAssertThrowsError(try empty.outputShape) { XCTAssertTrue("\($0)".contains("never been called"), "\($0)") }
    }

    func testInputLayerPropertiesAreItsTensor() throws {
        let x = Input(shape: [4, 3])
        let layer = x.node.layer
        XCTAssertEqual(try layer.input.shape, [nil, 4, 3])
        XCTAssertEqual(try layer.inputShape, [nil, 4, 3])
        XCTAssertEqual(try layer.outputShape, [nil, 4, 3])
        XCTAssertEqual(try layer.inputAt(0).shape, [nil, 4, 3])
        XCTAssertEqual(try layer.inputShapeAt(0), [nil, 4, 3])
        XCTAssertThrowsError(try layer.inputAt(1)) { XCTAssertTrue("\($0)".contains("only 1 inbound nodes"), "\($0)") }
    }

    func testLayersCalledTwiceOrNeverSayWhichNode() throws {
        let shared = Dense(4)
        XCTAssertThrowsError(try shared.output) { XCTAssertTrue("\($0)".contains("never been called"), "\($0)") }
        let first = try shared(Input(shape: [2])), second = try shared(Input(shape: [2]))  // the graph lives while its tensors do
        XCTAssertThrowsError(try shared.outputShape) { XCTAssertTrue("\($0)".contains("multiple inbound nodes"), "\($0)") }
        XCTAssertEqual(try shared.outputShapeAt(1), [nil, 4])
        XCTAssertEqual(try shared.inputShapeAt(0), [nil, 2])
        XCTAssertEqual([first.shape, second.shape], [[nil, 4], [nil, 4]])
    }
}
