import CKernels
import KerasIR
import KerasRuntime

/// The walk-through behind `kgraph example`: an MLP built directly against
/// the IR, its gradients, SGD updates as ops, the optimized graph, the plan,
/// and a short training run on a synthetic problem.
enum Example {
    static func run(steps: Int, batch: Int) throws {
        let g = try ExampleGraphs.mlpTraining(learningRate: 0.1, hidden: 64)
        print("== graph as built (\(g.nodes.count) nodes) ==")
        print(g, terminator: "")

        let store = ParameterStore()
        let plan = try ExecutionPlan(g, batchSize: batch, store: store)
        print("\n== after passes at batch \(batch) ==")
        for r in plan.passLog { print("// \(r)") }
        print(plan.graph, terminator: "")
        print("\n== plan ==")
        print(plan.listing)

        // Glorot-uniform weights from a fixed seed.
        var rng = SplitMix64(seed: 42)
        for (name, fanIn, fanOut) in [("dense.kernel", 784, 64), ("dense_1.kernel", 64, 10)] {
            let limit = (6.0 / Float(fanIn + fanOut)).squareRoot()
            try store.set(name, (0..<(fanIn * fanOut)).map { _ in rng.uniform(-limit, limit) })
        }
        // Synthetic task: the class is the argmax of a fixed random projection.
        let teacher = (0..<(784 * 10)).map { _ in rng.uniform(-1, 1) }
        var xs = [Float](repeating: 0, count: batch * 784), ys = [Float](repeating: 0, count: batch * 10)
        print("\n== training (\(steps) steps of SGD at batch \(batch), isa \(String(cString: ck_isa_name(plan.isa)))) ==")
        let clock = ContinuousClock()
        var elapsed = Duration.zero
        for step in 1...steps {
            for i in 0..<batch {
                var best = 0, bestScore = -Float.infinity
                for j in 0..<784 { xs[i * 784 + j] = rng.uniform(0, 1) }
                for c in 0..<10 {
                    var s: Float = 0
                    for j in 0..<784 { s += xs[i * 784 + j] * teacher[j * 10 + c] }
                    if s > bestScore { bestScore = s; best = c }
                    ys[i * 10 + c] = 0
                }
                ys[i * 10 + best] = 1
            }
            try xs.withUnsafeBytes { try plan.setInput("x", bytes: $0) }
            try ys.withUnsafeBytes { try plan.setInput("y", bytes: $0) }
            let t0 = clock.now
            try plan.run()
            elapsed += clock.now - t0
            if step == 1 || step % max(steps / 10, 1) == 0 {
                print("step \(step): loss \(plan.scalarOutput(0))")
            }
        }
        let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3
        print("mean step time: \(String(format: "%.3f", ms / Double(steps))) ms (forward, backward and update)")
    }
}
