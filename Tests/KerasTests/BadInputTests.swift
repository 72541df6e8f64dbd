import Keras
import XCTest

/// User mistakes are thrown errors naming the layer and the shapes; nothing
/// traps and no weight changes on a failed call.
final class BadInputTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(3) }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func testWrongInputRankOrSize() throws {
        let model = try Sequential([Dense(4, inputShape: [3])])
        XCTAssertEqual(message { _ = try model.predict(try Tensor([Float](repeating: 0, count: 8), shape: [2, 4])) },
                       "sequential: input 'input_layer' expects arrays of shape (None, 3), got an array of shape (2, 4)")
        XCTAssertEqual(message { _ = try model.predict(try Tensor([Float](repeating: 0, count: 12), shape: [2, 3, 2])) },
                       "sequential: input 'input_layer' expects arrays of shape (None, 3), got an array of shape (2, 3, 2)")
        let a = Input(shape: [5])
        XCTAssertEqual(message { _ = try Dense(2)(try Reshape([2, 3])(a)) },
                       "reshape: total size of the new array must be unchanged, input_shape = (5,), output_shape = (2, 3)")
        let d = Dense(2, name: "head")
        _ = try d(Input(shape: [5]))
        XCTAssertEqual(message { _ = try d(Input(shape: [6])) },
                       "head: expected an input whose last dimension is 5, got (None, 6)")
    }

    func testUnknownNames() throws {
        XCTAssertEqual(message { _ = try Sequential([Dense(4, activation: "rleu", inputShape: [3])]) },
                       "unknown activation 'rleu' (known: linear, relu, sigmoid, hard_sigmoid, tanh, elu, selu, softplus, softsign, exponential, gelu, swish, silu, leaky_relu, relu6, softmax, log_softmax, hard_silu, mish)")
        let model = try Sequential([Dense(4, inputShape: [3])])
        XCTAssertEqual(message { try model.compile(optimizer: "adamw2", loss: "mse") }, "unknown optimizer 'adamw2'")
        XCTAssertEqual(message { try model.compile(optimizer: "adam", loss: "msee") }, "unknown loss 'msee'")
        XCTAssertEqual(message { try model.compile(optimizer: "adam", loss: "mse", metrics: ["acuracy"]) }, "unknown metric 'acuracy'")
        XCTAssertEqual(message { _ = try Initializers.get("glorot_unifrom") }, "unknown initializer 'glorot_unifrom'")
        XCTAssertFalse(model.isCompiled)
    }

    func testSetWeightsWithWrongShapesChangesNothing() throws {
        let model = try Sequential([Dense(4, inputShape: [3]), Dense(2)])
        let before = model.getWeights()
        let bad = [before[0], before[1], try Tensor([Float](repeating: 1, count: 6), shape: [3, 2]), before[3]]
        XCTAssertEqual(message { try model.setWeights(bad) },
                       "sequential: weight dense_1/kernel has shape (4, 2), got an array of shape (3, 2)")
        XCTAssertEqual(message { try model.setWeights(Array(before.prefix(3))) },
                       "sequential: setWeights expects 4 arrays ((3, 4), (4,), (4, 2), (2,)), got 3")
        XCTAssertEqual(model.getWeights(), before)
        let layer = model.layers[0]
        XCTAssertEqual(message { try layer.setWeights([before[1], before[0]]) },
                       "dense: weight dense/kernel has shape (3, 4), got an array of shape (4,)")
        XCTAssertEqual(model.getWeights(), before)
    }

    func testFitWithMismatchedLengthsChangesNothing() throws {
        let model = try Sequential([Dense(2, inputShape: [3])])
        try model.compile(optimizer: "sgd", loss: "mse")
        let before = model.getWeights()
        let x = try Tensor([Float](repeating: 1, count: 30), shape: [10, 3])
        let y = try Tensor([Float](repeating: 1, count: 16), shape: [8, 2])
        XCTAssertEqual(message { try model.fit(x, y, verbose: 0) },
                       "sequential: x and y have different numbers of samples: x has 10, y has 8 (shape (8, 2))")
        XCTAssertEqual(model.getWeights(), before)
        XCTAssertEqual(model.optimizer!.iterations, 0)
    }

    func testPredictBeforeBuildAndFitBeforeCompile() throws {
        let model = try Sequential([Dense(2)])
        XCTAssertEqual(message { _ = try model.predict([]) },
                       "sequential: the model has not been built yet (it has no input shape); call build(inputShape:) or give the first layer an input shape before using data")
        let built = try Sequential([Dense(2, inputShape: [3])], name: "net")
        let x = try Tensor([Float](repeating: 1, count: 6), shape: [2, 3])
        XCTAssertEqual(message { try built.fit(x, x, verbose: 0) }, "net: you must call compile() before fit()")
    }

    func testNonUniqueNamesAndBadConfigs() throws {
        let a = Input(shape: [3])
        let y = try Dense(2, name: "same")(try Dense(3, name: "same")(a))
        XCTAssertEqual(message { _ = try Model(inputs: a, outputs: y) },
                       "functional: the name \"same\" is used 2 times in the model; all layer names should be unique")
        XCTAssertEqual(message { _ = try Sequential([Dense(0, inputShape: [3])]) }, "dense: units must be positive, got 0")
        XCTAssertEqual(message { _ = try Sequential([Dropout(1.5, name: "d"), ]).build(inputShape: [3]) }, "d: rate must be in [0, 1], got 1.5")
        XCTAssertEqual(message { _ = try Sequential([Permute([1, 3], inputShape: [2, 2])]) },
                       "permute: invalid permutation argument dims=[1, 3] for input shape (None, 2, 2); dims should contain every integer from 1 to 2")
    }
}
