/// Every op the standard registry defines, by kind: what passes, scheduling,
/// specialization and memory planning compare against instead of spelling
/// op names (a typo is a compile error, not a pass that silently never
/// fires). The raw value is the name in the graph text and the registry;
/// a test checks that this list and the registry hold the same ops.
public enum OpKind: String, CaseIterable, Sendable {
    case abs
    case add
    case allreduceMean = "allreduce_mean"
    case argmax
    case assign
    case avgPool = "avg_pool"
    case avgPoolBackward = "avg_pool_backward"
    case broadcastTo = "broadcast_to"
    case cast
    case concat
    case constant
    case conv
    case convBackwardData = "conv_backward_data"
    case convBackwardFilter = "conv_backward_filter"
    case convBiasAct = "conv_bias_act"
    case dimSize = "dim_size"
    case div
    case elu
    case equal
    case erf
    case exp
    case fusedElementwise = "fused_elementwise"
    case fusedUpdate = "fused_update"
    case gather
    case gelu
    case geluTanh = "gelu_tanh"
    case gemmBiasAct = "gemm_bias_act"
    case gemmUpdate = "gemm_update"
    case greater
    case greaterEqual = "greater_equal"
    case hardSigmoid = "hard_sigmoid"
    case input
    case leakyRelu = "leaky_relu"
    case less
    case lessEqual = "less_equal"
    case log
    case logSoftmax = "log_softmax"
    case lstmCellState = "lstm_cell_state"
    case lstmHidden = "lstm_hidden"
    case matmul
    case maxPool = "max_pool"
    case maxPoolBackward = "max_pool_backward"
    case maximum
    case minimum
    case moments
    case mul
    case neg
    case notEqual = "not_equal"
    case pack
    case pad
    case parameter
    case pow
    case randomBernoulli = "random_bernoulli"
    case randomNormal = "random_normal"
    case randomUniform = "random_uniform"
    case reduceMax = "reduce_max"
    case reduceMean = "reduce_mean"
    case reduceMin = "reduce_min"
    case reduceSum = "reduce_sum"
    case relu
    case reshape
    case rnnSequence = "rnn_sequence"
    case rnnSequenceGrad = "rnn_sequence_grad"
    case rsqrt
    case scatterAdd = "scatter_add"
    case select
    case selu
    case sigmoid
    case sign
    case slice
    case softmax
    case softmaxCrossEntropy = "softmax_cross_entropy"
    case softmaxCrossEntropyFused = "softmax_cross_entropy_fused"
    case softmaxCrossEntropyGrad = "softmax_cross_entropy_grad"
    case softplus
    case softsign
    case sqrt
    case square
    case stopGradient = "stop_gradient"
    case sub
    case swish
    case tanh
    case transpose
    case view
}

extension Node {
    /// The node's op as a kind (nil for an op outside the standard registry).
    public var kind: OpKind? { OpKind(rawValue: op) }
}
