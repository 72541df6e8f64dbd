import Keras
import XCTest

/// A user-defined layer: y = x * scale + shift with learned vectors.
final class ScaleShift: Layer {
    var scale: Variable?, shift: Variable?
    override func build(_ shapes: [Shape]) throws {
        let d = shapes[0].last!!
        scale = try addWeight(name: "scale", shape: [d], initializer: Ones())
        shift = try addWeight(name: "shift", shape: [d], initializer: Zeros())
    }
    override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        return [try b.add(b.mul(inputs[0], context.read(scale!)), context.read(shift!))]
    }
}

final class SavingAndCustomLayerTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(5) }

    func tempPath(_ suffix: String) -> String { NSTemporaryDirectory() + "keras-\(UUID().uuidString)\(suffix)" }

    func testCustomLayerGetsGradientsForFree() throws {
        let layer = ScaleShift()
        XCTAssertEqual(layer.name, "scale_shift")
        XCTAssertEqual(try layer.computeOutputShape([nil, 3]), [nil, 3])
        let model = try Sequential([Dense(3, inputShape: [2]), layer])
        try model.compile(optimizer: SGD(learningRate: 0.1), loss: "mse")
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2]), y = try Tensor([1, 1, 1, 0, 0, 0], shape: [2, 3])
        let before = layer.getWeights()
        let l0 = try model.trainOnBatch(x, y)[0]
        XCTAssertNotEqual(layer.getWeights(), before)
        for _ in 0..<50 { _ = try model.trainOnBatch(x, y) }
        XCTAssertLessThan(try model.evaluate(x, y)[0], l0)
    }

    func testNpzRoundTripAndErrors() throws {
        let a = try Tensor([1.5, -2, 3, 4, 5, 6], shape: [2, 3])
        let b = try Tensor([Int32(7), 8, 9], shape: [3])
        let bytes = try NumPy.encodeArchive([("a", a), ("dir/b", b)])
        let back = try NumPy.decodeArchive(bytes)
        XCTAssertEqual(back.map(\.0), ["a", "dir/b"])
        XCTAssertEqual(back[0].1, a)
        XCTAssertEqual(back[1].1, b)
        XCTAssertEqual(try NumPy.decode(NumPy.encode(a)), a)
        XCTAssertThrowsError(try NumPy.decodeArchive(Array(bytes.prefix(40)), name: "cut.npz")) {
            XCTAssertTrue("\($0)".hasPrefix("cut.npz: not a valid .npz file"), "\($0)")
        }
        XCTAssertThrowsError(try NumPy.decode(Array(NumPy.encode(a).dropLast(4)), name: "short.npy")) {
            XCTAssertEqual("\($0)", "short.npy: not a valid .npy file: holds 20 data bytes, shape [2, 3] needs 24")
        }
        XCTAssertThrowsError(try NumPy.decode([1, 2, 3], name: "junk.npy")) {
            XCTAssertEqual("\($0)", "junk.npy: not a valid .npy file: bad magic")
        }
    }

    func testSaveAndLoadWeightsAndCheckpoint() throws {
        let model = try Sequential([Dense(4, inputShape: [3]), Dense(2)])
        let path = tempPath(".npz")
        try model.saveWeights(path)
        let saved = model.getWeights()
        try model.setWeights(saved.map { try Tensor(zeros: $0.type) })
        try model.loadWeights(path)
        XCTAssertEqual(model.getWeights(), saved)
        XCTAssertThrowsError(try model.saveWeights(tempPath(".weights.h5")))
        // a corrupt file changes nothing
        try writeFileAtomically(path, [0x50, 0x4b, 0x05, 0x06] + [UInt8](repeating: 0, count: 30))
        XCTAssertThrowsError(try model.loadWeights(path))
        XCTAssertEqual(model.getWeights(), saved)

        try model.compile(optimizer: "adam", loss: "mse")
        let x = try Tensor((0..<30).map { Float($0) / 30 }, shape: [10, 3]), y = try Tensor([Float](repeating: 0.5, count: 20), shape: [10, 2])
        let pattern = NSTemporaryDirectory() + "ckpt-\(UUID().uuidString)-{epoch:02d}-{loss:.3f}.npz"
        let ckpt = try ModelCheckpoint(pattern, monitor: "loss", saveBestOnly: false)
        _ = try model.fit(x, y, batchSize: 5, epochs: 2, verbose: 0, callbacks: [ckpt])
        let dir = NSTemporaryDirectory()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(URL(fileURLWithPath: pattern).lastPathComponent.components(separatedBy: "-{")[0]) }
        XCTAssertEqual(files.count, 2, "\(files)")
        XCTAssertTrue(files.contains { $0.contains("-02-") && $0.hasSuffix(".npz") }, "\(files)")
        XCTAssertFalse(files.contains { $0.contains(".tmp") })
    }
}

final class OwnershipTests: XCTestCase {
    /// Tensors own their history and models own their graphs, but nothing
    /// owns a model back: dropping it frees it and its layers.
    func testModelsAndLayersAreFreed() throws {
        weak var weakModel: Model?
        weak var weakLayer: Layer?
        weak var weakInput: InputLayer?
        try {
            let input = Input(shape: [4])
            let dense = Dense(3)
            let model = try Model(inputs: input, outputs: try dense(input))
            try model.compile(optimizer: "sgd", loss: "mse")
            _ = try model.fit(try Tensor([Float](repeating: 1, count: 8), shape: [2, 4]), try Tensor([Float](repeating: 0, count: 6), shape: [2, 3]), verbose: 0)
            weakModel = model
            weakLayer = dense
            weakInput = model.layers[0] as? InputLayer
        }()
        XCTAssertNil(weakModel)
        XCTAssertNil(weakLayer)
        XCTAssertNil(weakInput)
    }
}
