/// Small graphs built directly against the IR: `kgraph example` walks
/// through one, and the text, pass and runtime tests use the same one.
public enum ExampleGraphs {
    /// 784 -> 64 -> 10 MLP with softmax cross-entropy, its gradients and SGD
    /// updates as assign ops; returns the loss as the only output.
    public static func mlpTraining(learningRate: Float = 0.1, hidden: Int = 64) throws -> Graph {
        let b = GraphBuilder(name: "mlp_train")
        let x = try b.input("x", .f32([-1, 784]))
        let y = try b.input("y", .f32([-1, 10]))
        let w1 = try b.parameter("dense.kernel", .f32([784, hidden]))
        let b1 = try b.parameter("dense.bias", .f32([hidden]))
        let w2 = try b.parameter("dense_1.kernel", .f32([hidden, 10]))
        let b2 = try b.parameter("dense_1.bias", .f32([10]))
        let h = try b.withLayer("dense") { try b.relu(b.add(b.matmul(x, w1), b1)) }
        let logits = try b.withLayer("dense_1") { try b.add(b.matmul(h, w2), b2) }
        let loss = try b.withLayer("loss") {
            try b.neg(b.reduceMean(b.reduceSum(b.mul(y, b.logSoftmax(logits)), axes: [1]), axes: [0]))
        }
        var g = b.graph
        let params = [w1, b1, w2, b2]
        let grads = try Autodiff.gradients(of: loss, wrt: params, in: &g)
        let ub = GraphBuilder(extending: g)
        try ub.withLayer("sgd") {
            for (p, d) in zip(params, grads) { _ = try ub.assign(p, ub.sub(p, ub.mul(d, learningRate))) }
        }
        ub.setOutputs([loss])
        return ub.graph
    }
}
