import Keras
import XCTest

final class TrainingTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(7) }

    /// Two Gaussian blobs per class in 20 dimensions, 3 classes.
    static func separable(_ n: Int, seed: UInt64) throws -> (Tensor, Tensor) {
        var g = SplitMix64(seed: seed)
        var centers = (0..<(3 * 20)).map { _ in g.uniform(-2, 2) }
        centers[0] += 0
        var xs: [Float] = [], ys: [Float] = []
        for _ in 0..<n {
            let c = Int(g.next() % 3)
            xs += (0..<20).map { centers[c * 20 + $0] + g.uniform(-1, 1) }
            ys += (0..<3).map { $0 == c ? 1 : 0 }
        }
        return (try Tensor(xs, shape: [n, 20]), try Tensor(ys, shape: [n, 3]))
    }

    func testMLPReachesHighAccuracyWithFitAndHistory() throws {
        let (x, y) = try Self.separable(600, seed: 3)
        let model = try Sequential([Dense(32, activation: "relu", inputShape: [20]), Dropout(0.1), Dense(3, activation: "softmax")])
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: "categorical_crossentropy", metrics: ["accuracy"])
        let history = try model.fit(x, y, batchSize: 32, epochs: 5, verbose: 1, validationSplit: 0.2)
        XCTAssertEqual(history.epoch, [0, 1, 2, 3, 4])
        XCTAssertEqual(history.history["loss"]?.count, 5)
        XCTAssertEqual(history.history["accuracy"]?.count, 5)
        XCTAssertEqual(history.history["val_loss"]?.count, 5)
        XCTAssertEqual(history.history["val_accuracy"]?.count, 5)
        XCTAssertLessThan(history.history["loss"]!.last!, history.history["loss"]!.first!)
        let result = try model.evaluateDict(x: [x], y: [y], verbose: 0)
        XCTAssertGreaterThanOrEqual(result["accuracy"]!, 0.95, "\(result)")
        XCTAssertGreaterThanOrEqual(history.history["val_accuracy"]!.last!, 0.95)
        let classes = try model.predictClasses(try x.rows(0..<10))
        XCTAssertEqual(classes.count, 10)
    }

    /// Every optimizer and loss named in Keras trains a small regression or classification.
    func testEveryOptimizerReducesTheLoss() throws {
        let (x, y) = try Self.separable(128, seed: 5)
        for name in ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamax", "nadam"] {
            Naming.reset()
            let model = try Sequential([Dense(3, activation: "softmax", inputShape: [20])])
            let opt = try Optimizers.get(name)
            if !(opt is Adadelta) { opt.currentLearningRate = name == "sgd" ? 0.1 : 0.01 } else { opt.currentLearningRate = 1 }
            try model.compile(optimizer: opt, loss: "categorical_crossentropy")
            let h = try model.fit(x, y, batchSize: 32, epochs: 3, verbose: 0, shuffle: false)
            let l = h.history["loss"]!
            XCTAssertLessThan(l.last!, l.first!, "\(name): \(l)")
            XCTAssertEqual(opt.iterations, 12, name)
        }
    }

    /// Each optimizer's whole update, with the batch-normalization moving
    /// statistics and the step counter, runs as one fused_update kernel per
    /// step: no assign copies, no per-variable kernels. SGD (plain or with
    /// momentum) updates each Dense kernel in its weight-gradient GEMM's store
    /// step instead (gemm_update: the same GEMM count, no gradient tensor).
    func testEveryOptimizerUpdatesInOneKernel() throws {
        let (x, y) = try Self.separable(32, seed: 5)
        let optimizers: [Optimizer] = [SGD(), SGD(momentum: 0.9, nesterov: true), SGD(learningRate: 0.1, clipvalue: 0.5),
                                       RMSprop(), RMSprop(momentum: 0.9, centered: true), Adagrad(), Adadelta(), Adam(), Adam(amsgrad: true),
                                       Adamax(), Nadam(), Adam(clipnorm: 1), SGD(momentum: 0.9, globalClipnorm: 1),
                                       RMSprop(clipnorm: 0.5)]
        for opt in optimizers {
            Naming.reset()
            let model = try Sequential([Dense(8, activation: "relu", inputShape: [20]), BatchNormalization(), Dense(3, activation: "softmax")])
            try model.compile(optimizer: opt, loss: "categorical_crossentropy")
            let plan = try model.trainingPlan(x: [x], y: [y])
            let names = plan.steps.map(\.kernel.name)
            let what = "\(type(of: opt)) \(opt.config)"
            XCTAssertEqual(names.filter { $0.hasPrefix("ck_f32_fused_update") }.count, 1, "\(what): \(names)")
            XCTAssertEqual(names.filter { $0 == "memmove" }, [], what)
            let own = plan.steps.filter { plan.graph.nodes[$0.node].layer == opt.name }
            let inGemm = own.filter { plan.graph.nodes[$0.node].op == "gemm_update" }.count
            XCTAssertEqual(own.count - inGemm, 1, "\(what): optimizer kernels \(own.map(\.kernel.name))")
            // clipping sits between the GEMM and the update
            let sgdInGemm = (opt as? SGD).map { !$0.nesterov && $0.clipvalue == nil && $0.clipnorm == nil && $0.globalClipnorm == nil } ?? false
            XCTAssertEqual(inGemm, sgdInGemm ? 2 : 0, "\(what): updates in the gradient GEMMs")
        }
    }

    /// Keras 2's predict_classes: the argmax over the last axis (per timestep
    /// of a sequence output), a 0.5 threshold for one unit, an error for
    /// several outputs.
    func testPredictClassesTakesTheLastAxis() throws {
        Naming.reset()
        // identity weights: the prediction is the input, so the classes are the input's argmax per timestep
        let seq = try Sequential([InputLayer(shape: [2, 3]), TimeDistributed(Dense(3, kernelInitializer: Identity(), biasInitializer: "zeros"))])
        let x = try Tensor([0, 5, 1, 9, 2, 3, 7, 0, 0, 1, 1, 4], shape: [2, 2, 3])
        XCTAssertEqual(try seq.predictClasses(x), [1, 0, 0, 2])
        let one = try Sequential([Dense(1, kernelInitializer: "ones", biasInitializer: "zeros", inputShape: [1])])
        XCTAssertEqual(try one.predictClasses(try Tensor([0.2, 0.7], shape: [2, 1])), [0, 1])
        let input = Input(shape: [2])
        let two = try Model(inputs: [input], outputs: [try Dense(2)(input), try Dense(3)(input)])
        XCTAssertThrowsError(try two.predictClasses(try Tensor([1, 2], shape: [1, 2]))) {
            XCTAssertTrue("\($0)".contains("predictClasses needs a model with one output, this one has 2"), "\($0)")
        }
    }

    func testLossesByName() throws {
        let (x, y) = try Self.separable(64, seed: 9)
        for loss in ["mean_squared_error", "mae", "mape", "msle", "binary_crossentropy", "categorical_crossentropy", "hinge",
                     "squared_hinge", "categorical_hinge", "kl_divergence", "poisson", "cosine_similarity", "huber", "log_cosh"] {
            Naming.reset()
            let model = try Sequential([Dense(3, activation: "softmax", inputShape: [20])])
            try model.compile(optimizer: SGD(learningRate: 0.05), loss: loss, metrics: ["accuracy", "mse"])
            let h = try model.fit(x, y, batchSize: 16, epochs: 1, verbose: 0)
            XCTAssertTrue(h.history["loss"]![0].isFinite, loss)
        }
        // sparse labels
        let labels = try Tensor(y.floats.enumerated().filter { $0.element == 1 }.map { Float($0.offset % 3) }, shape: [64])
        let model = try Sequential([Dense(3, inputShape: [20])])
        try model.compile(optimizer: "adam", loss: Loss.sparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        let h = try model.fit(x, labels, batchSize: 16, epochs: 2, verbose: 0)
        XCTAssertNotNil(h.history["accuracy"])
    }

    func testCallbacks() throws {
        let (x, y) = try Self.separable(96, seed: 11)
        let model = try Sequential([Dense(3, activation: "softmax", inputShape: [20])])
        try model.compile(optimizer: SGD(learningRate: 0.0), loss: "categorical_crossentropy")
        var epochsSeen: [Int] = []
        let early = try EarlyStopping(monitor: "loss", patience: 1)
        let csv = NSTemporaryDirectory() + "log-\(UUID().uuidString).csv"
        let h = try model.fit(x, y, batchSize: 32, epochs: 10, verbose: 0, callbacks: [
            early, CSVLogger(csv), LambdaCallback(onEpochEnd: { e, _ in epochsSeen.append(e) }),
            LearningRateScheduler({ epoch, lr in lr }),
        ])
        XCTAssertLessThan(h.epoch.count, 10, "EarlyStopping must stop a run whose loss does not improve")
        XCTAssertEqual(epochsSeen, h.epoch)
        let text = try String(contentsOfFile: csv, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("epoch,loss\n0,"), text)

        let plateau = try ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 1)
        try model.compile(optimizer: SGD(learningRate: 0.0), loss: "categorical_crossentropy")
        model.optimizer!.currentLearningRate = 0.1
        model.optimizer!.currentLearningRate = 0
        model.optimizer!.currentLearningRate = 1e-9
        _ = try model.fit(x, y, batchSize: 32, epochs: 4, verbose: 0, callbacks: [plateau])
        XCTAssertLessThan(model.optimizer!.currentLearningRate, 1e-9)
    }

    func testSchedulesAndClipping() throws {
        let s = ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true)
        XCTAssertEqual(s.rate(at: 9), 0.1)
        XCTAssertEqual(s.rate(at: 10), 0.05, accuracy: 1e-7)
        let p = try PiecewiseConstantDecay(boundaries: [5, 10], values: [1, 0.5, 0.1])
        XCTAssertEqual([p.rate(at: 5), p.rate(at: 6), p.rate(at: 11)], [1, 0.5, 0.1])
        let (x, y) = try Self.separable(64, seed: 13)
        let model = try Sequential([Dense(3, activation: "softmax", inputShape: [20])])
        try model.compile(optimizer: SGD(schedule: s), loss: "categorical_crossentropy")
        _ = try model.fit(x, y, batchSize: 8, epochs: 2, verbose: 0)
        XCTAssertEqual(model.optimizer!.iterations, 16)
        XCTAssertEqual(model.optimizer!.currentLearningRate, 0.05, accuracy: 1e-7)
        let clipped = try Sequential([Dense(3, activation: "softmax", inputShape: [20])])
        XCTAssertThrowsError(try clipped.compile(optimizer: SGD(learningRate: 0.1, clipnorm: 0.01, clipvalue: 0.001), loss: "categorical_crossentropy")) {
            XCTAssertTrue("\($0)".contains("only one of clipnorm, clipvalue and global_clipnorm can be set; got clipnorm=0.01, clipvalue=0.001"), "\($0)")
        }
        XCTAssertFalse(clipped.isCompiled, "a refused compile leaves the model as it was")
        for (opt, bound) in [(SGD(learningRate: 0.1, clipvalue: 0.001), Float(0.1 * 0.001)), (SGD(learningRate: 0.1, clipnorm: 0.01), 0.1 * 0.01),
                             (SGD(learningRate: 0.1, globalClipnorm: 0.01), 0.1 * 0.01)] {
            try clipped.compile(optimizer: opt, loss: "categorical_crossentropy")
            let before = clipped.getWeights().map(\.floats)
            _ = try clipped.trainOnBatch(x, y)
            let after = clipped.getWeights().map(\.floats)
            // clipvalue bounds each change; clipnorm and global_clipnorm bound the change's norm
            let changes = zip(before, after).map { zip($0, $1).map { $0 - $1 } }
            let measure = opt.clipvalue != nil ? changes.flatMap { $0.map(abs) }.max()! : changes.map { sqrt($0.map { $0 * $0 }.reduce(0, +)) }.max()!
            XCTAssertLessThanOrEqual(measure, bound * 1.0001 + 1e-7, "\(opt.config)")
            XCTAssertGreaterThan(measure, bound * 0.5, "\(opt.config): the clip was reached")
        }
    }

    /// A small CNN with relu, max pooling and dropout trains to the same
    /// weights with the memory passes on (dropout masks recomputed, relu's
    /// gradient in the pooling kernel over the relu output's storage, large
    /// results made late) and off.
    func testPoolReluGradAndRecomputedDropoutMatchTheUnfusedStep() throws {
        var rng = SplitMix64(seed: 21)
        let x = try Tensor((0..<(8 * 8 * 8 * 1)).map { _ in Float(rng.unit()) }, shape: [8, 8, 8, 1])
        let y = try Tensor((0..<(8 * 3)).map { $0 % 3 == ($0 / 3) % 3 ? 1 : 0 }, shape: [8, 3])
        func train(disable: String?) throws -> [[Float]] {
            if let d = disable { setenv("KERAS_DISABLE_PASSES", d, 1) }
            defer { unsetenv("KERAS_DISABLE_PASSES") }
            Naming.reset()
            let model = try Sequential([Conv2D(filters: 4, kernelSize: [3, 3], activation: "relu", kernelInitializer: GlorotUniform(seed: 3), inputShape: [8, 8, 1]),
                                        MaxPooling2D(poolSize: [2, 2]), Dropout(0.5, seed: 11), Flatten(),
                                        Dense(3, activation: "softmax", kernelInitializer: GlorotUniform(seed: 4))])
            try model.compile(optimizer: Adam(learningRate: 0.01), loss: "categorical_crossentropy")
            let plan = try model.trainingPlan(x: [x], y: [y])
            let names = plan.steps.map(\.kernel.name)
            if disable == nil {
                XCTAssertTrue(names.contains { $0.hasPrefix("ck_f32_max_pool_backward_relu") }, "\(names)")
                XCTAssertFalse(names.contains { $0.hasPrefix("ck_f32_random_bernoulli") }, "the mask is drawn in the fused kernels: \(names)")
            }
            for _ in 0..<3 { _ = try model.trainOnBatch(x, y) }
            return model.getWeights().map(\.floats)
        }
        let fused = try train(disable: nil)
        let plain = try train(disable: "fuse-pool-relu-grad,fuse-elementwise,in-place")
        for (k, (a, b)) in zip(fused, plain).enumerated() {
            for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5, "weight \(k)") }
        }
    }

    func testActivityRegularizationAddsToTheLoss() throws {
        let x = try Tensor([Float](repeating: 1, count: 8), shape: [2, 4])
        let y = try Tensor([Float](repeating: 0, count: 8), shape: [2, 4])
        let plain = try Sequential([Dense(4, kernelInitializer: "ones", inputShape: [4])])
        try plain.compile(optimizer: SGD(learningRate: 0), loss: "mse")
        let reg = try Sequential([Dense(4, kernelInitializer: "ones", inputShape: [4]), ActivityRegularization(l1: 0.5)])
        try reg.compile(optimizer: SGD(learningRate: 0), loss: "mse")
        let a = try plain.evaluate(x, y)[0], b = try reg.evaluate(x, y)[0]
        // outputs are all 4; l1 term = 0.5 * sum|4| over 8 values / batch 2 = 8
        XCTAssertEqual(b - a, 8, accuracy: 1e-4)
    }
}

final class MaskedLossTests: XCTestCase {
    /// With Masking before a per-timestep Dense, masked timesteps do not count
    /// in the loss: the mean runs over the unmasked ones (Keras's apply_mask).
    func testMaskedTimestepsAreLeftOutOfTheLoss() throws {
        Naming.reset()
        let model = try Sequential([Masking(maskValue: 0, inputShape: [3, 2]), Dense(1, kernelInitializer: "ones", biasInitializer: "zeros")])
        try model.compile(optimizer: SGD(learningRate: 0), loss: "mse")
        // sample 0: timesteps 1 and 2 masked; sample 1: nothing masked
        let x = try Tensor([1, 1, 0, 0, 0, 0, 1, 2, 2, 1, 0, 1], shape: [2, 3, 2])
        let y = try Tensor([0, 9, 9, 0, 0, 0], shape: [2, 3, 1])
        // outputs: [2, 0, 0 | 3, 3, 1]; squared errors on unmasked positions: 4, 9, 9, 1 over 4 positions
        XCTAssertEqual(try model.evaluate(x, y)[0], (4 + 9 + 9 + 1) / 4, accuracy: 1e-4)
    }
}
