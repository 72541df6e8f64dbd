/// The four reference models keras-bench times and kgraph dumps by name:
/// mlp, mnist_cnn, cifar_cnn and imdb_lstm, each with its batch size,
/// compiled as the benchmark issue defines them, and random data for a batch.
public struct BenchmarkModel {
    public let name: String
    public let batchSize: Int
    /// Builds and compiles the model.
    public let build: () throws -> Model
    /// Random inputs and targets for one batch of `n` samples.
    public let data: (_ n: Int, _ rng: inout SplitMix64) throws -> (Tensor, Tensor)

    public static func named(_ name: String) throws -> BenchmarkModel {
        guard let m = suite.first(where: { $0.name == name }) else {
            throw KerasError("unknown benchmark model '\(name)' (the suite has \(suite.map(\.name).joined(separator: ", ")))")
        }
        return m
    }

    static func images(_ n: Int, _ shape: [Int], _ rng: inout SplitMix64) throws -> Tensor {
        try Tensor((0..<(n * shape.reduce(1, *))).map { _ in Float(rng.next() >> 40) / Float(1 << 24) }, shape: [n] + shape)
    }

    static func oneHot(_ n: Int, classes: Int, _ rng: inout SplitMix64) throws -> Tensor {
        try toCategorical((0..<n).map { _ in Int(rng.next() % UInt64(classes)) }, numClasses: classes)
    }

    public static let suite: [BenchmarkModel] = [
        BenchmarkModel(name: "mlp", batchSize: 128, build: {
            let m = try Sequential([Dense(512, activation: "relu", inputShape: [784]), Dense(512, activation: "relu"),
                                    Dense(10, activation: "softmax")], name: "mlp")
            try m.compile(optimizer: SGD(learningRate: 0.01, momentum: 0.9), loss: "categorical_crossentropy")
            return m
        }, data: { n, rng in (try images(n, [784], &rng), try oneHot(n, classes: 10, &rng)) }),
        BenchmarkModel(name: "mnist_cnn", batchSize: 128, build: {
            let m = try Sequential([
                Conv2D(32, 3, activation: "relu", inputShape: [28, 28, 1]), Conv2D(64, 3, activation: "relu"),
                MaxPooling2D(2), Dropout(0.25), Flatten(), Dense(128, activation: "relu"), Dropout(0.5),
                Dense(10, activation: "softmax"),
            ], name: "mnist_cnn")
            try m.compile(optimizer: Adam(learningRate: 1e-3), loss: "categorical_crossentropy")
            return m
        }, data: { n, rng in (try images(n, [28, 28, 1], &rng), try oneHot(n, classes: 10, &rng)) }),
        BenchmarkModel(name: "cifar_cnn", batchSize: 64, build: {
            let m = try Sequential([
                Conv2D(32, 3, padding: "same", activation: "relu", inputShape: [32, 32, 3]),
                Conv2D(32, 3, padding: "same", activation: "relu"), MaxPooling2D(2),
                Conv2D(64, 3, padding: "same", activation: "relu"), Conv2D(64, 3, padding: "same", activation: "relu"),
                MaxPooling2D(2), Flatten(), Dense(512, activation: "relu"), Dense(10, activation: "softmax"),
            ], name: "cifar_cnn")
            try m.compile(optimizer: Adam(), loss: "categorical_crossentropy")
            return m
        }, data: { n, rng in (try images(n, [32, 32, 3], &rng), try oneHot(n, classes: 10, &rng)) }),
        BenchmarkModel(name: "imdb_lstm", batchSize: 32, build: {
            let input = Input(shape: [80], dtype: .i32)
            let h = try LSTM(128)(try Embedding(inputDim: 20000, outputDim: 128)(input))
            let m = try Model(inputs: input, outputs: try Dense(1, activation: "sigmoid")(h), name: "imdb_lstm")
            try m.compile(optimizer: Adam(), loss: "binary_crossentropy")
            return m
        }, data: { n, rng in
            (try Tensor((0..<(n * 80)).map { _ in Int32(rng.next() % 20000) }, shape: [n, 80]),
             try Tensor((0..<n).map { _ in Float(rng.next() % 2) }, shape: [n, 1]))
        }),
    ]
}
