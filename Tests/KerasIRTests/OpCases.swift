import KerasIR

/// One input of an op case: its concrete type and how its values are drawn.
struct InputSpec {
    enum Values {
        /// Uniform in [lo, hi].
        case uniform(Double, Double)
        /// Magnitude uniform in [lo, hi] with a random sign: keeps clear of kinks at 0.
        case awayFromZero(Double, Double)
        case exactly([Double])
    }
    var type: TensorType
    var values: Values
    /// Whether the gradient check differentiates with respect to this input.
    var differentiate: Bool

    static func f32(_ shape: [Int], _ v: Values = .awayFromZero(0.1, 2), differentiate: Bool = true) -> InputSpec {
        InputSpec(type: .f32(shape), values: v, differentiate: differentiate)
    }
    static func i32(_ shape: [Int], _ v: [Double]) -> InputSpec {
        InputSpec(type: .i32(shape), values: .exactly(v), differentiate: false)
    }
    /// An f32 input whose values do not matter to the result's gradient (a mask or template).
    static func fixed(_ shape: [Int], _ v: Values) -> InputSpec {
        InputSpec(type: .f32(shape), values: v, differentiate: false)
    }
}

/// One row of the op table: an op applied to inputs with attributes. Every
/// registered op has at least one row; the tests compile each row to kernels
/// and compare with the reference, and check the VJP of every differentiable
/// row against central finite differences.
struct OpCase: CustomStringConvertible {
    var op: String
    var inputs: [InputSpec]
    var attrs: Attributes = [:]
    var label: String = ""
    var description: String { label.isEmpty ? op : "\(op) [\(label)]" }
}

private let unaryNames = ["neg", "exp", "log", "sqrt", "rsqrt", "square", "abs", "sign", "erf", "relu", "sigmoid",
                          "tanh", "softplus", "softsign", "elu", "selu", "gelu", "gelu_tanh", "swish", "hard_sigmoid", "leaky_relu"]

private func unaryCases() -> [OpCase] {
    unaryNames.map { name in
        let values: InputSpec.Values
        switch name {
        case "log", "sqrt", "rsqrt": values = .uniform(0.5, 3)
        case "hard_sigmoid": values = .awayFromZero(0.1, 2.9)
        case "exp": values = .uniform(-3, 3)
        default: values = .awayFromZero(0.05, 3)
        }
        var attrs: Attributes = [:]
        if name == "elu" { attrs = ["alpha": .float(0.7)] }
        if name == "leaky_relu" { attrs = ["alpha": .float(0.3)] }
        return OpCase(op: name, inputs: [.f32([2, 3, 5], values)], attrs: attrs)
    }
}

private func binaryCases() -> [OpCase] {
    let shapes: [([Int], [Int], String)] = [([2, 3, 4], [2, 3, 4], "same"), ([2, 3, 4], [4], "row"),
                                            ([2, 1, 4], [3, 1], "both"), ([], [2, 3], "scalar")]
    var out: [OpCase] = []
    for name in ["add", "sub", "mul", "div", "maximum", "minimum", "pow"] {
        for (a, b, label) in shapes {
            var va: InputSpec.Values = .awayFromZero(0.1, 2), vb: InputSpec.Values = .awayFromZero(0.1, 2)
            if name == "pow" { va = .uniform(0.5, 2); vb = .uniform(-1.5, 1.5) }
            if name == "div" { vb = .awayFromZero(0.5, 2) }
            out.append(OpCase(op: name, inputs: [.f32(a, va), .f32(b, vb)], label: label))
        }
    }
    return out
}

private func comparisonCases() -> [OpCase] {
    ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"].flatMap { name in
        [OpCase(op: name, inputs: [.fixed([2, 4], .exactly([1, 2, 3, 4, 5, 6, 7, 8])), .fixed([4], .exactly([1, 5, 3, 0]))], label: "f32"),
         OpCase(op: name, inputs: [.i32([2, 3], [0, 1, 2, 3, 4, 5]), .i32([], [2])], label: "i32")]
    }
}

let opCases: [OpCase] = unaryCases() + binaryCases() + comparisonCases() + recurrentSequenceCases() + [
    OpCase(op: "select", inputs: [.fixed([2, 3], .exactly([1, 0, 1, 0, 0, 1])), .f32([2, 3]), .f32([3])]),
    OpCase(op: "select", inputs: [.i32([3], [0, 5, 1]), .f32([2, 3]), .f32([])], label: "i32 condition"),

    OpCase(op: "reduce_sum", inputs: [.f32([2, 3, 4])], attrs: ["axes": .ints([1]), "keepdims": .bool(false)]),
    OpCase(op: "reduce_sum", inputs: [.f32([2, 3, 4])], attrs: ["axes": .ints([0, 2]), "keepdims": .bool(true)], label: "non-adjacent axes"),
    OpCase(op: "reduce_sum", inputs: [.f32([2, 3])], attrs: ["axes": .ints([]), "keepdims": .bool(false)], label: "no axes"),
    OpCase(op: "reduce_mean", inputs: [.f32([2, 3, 4])], attrs: ["axes": .ints([-1]), "keepdims": .bool(false)]),
    OpCase(op: "reduce_mean", inputs: [.f32([2, 3, 4])], attrs: ["axes": .ints([0, 2]), "keepdims": .bool(false)], label: "two axes"),
    OpCase(op: "reduce_max", inputs: [.f32([2, 3, 4], .uniform(-2, 2))], attrs: ["axes": .ints([1]), "keepdims": .bool(false)]),
    OpCase(op: "reduce_min", inputs: [.f32([2, 3, 4], .uniform(-2, 2))], attrs: ["axes": .ints([0, 1]), "keepdims": .bool(true)]),
    OpCase(op: "argmax", inputs: [.fixed([2, 3, 4], .uniform(-2, 2))], attrs: ["axis": .int(-1)]),
    OpCase(op: "argmax", inputs: [.fixed([2, 9, 11], .uniform(-2, 2))], attrs: ["axis": .int(1), "keepdims": .bool(true)], label: "middle axis"),
    OpCase(op: "argmax", inputs: [.fixed([2, 3], .exactly([1, 5, 5, 2, 2, 0]))], attrs: ["axis": .int(1)], label: "ties take the first"),
    OpCase(op: "softmax", inputs: [.f32([2, 3, 4], .uniform(-2, 2))], attrs: ["axis": .int(-1)]),
    OpCase(op: "softmax", inputs: [.f32([2, 3, 4], .uniform(-2, 2))], attrs: ["axis": .int(1)], label: "middle axis"),
    OpCase(op: "log_softmax", inputs: [.f32([3, 5], .uniform(-2, 2))], attrs: ["axis": .int(-1)]),
    OpCase(op: "log_softmax", inputs: [.f32([3, 5, 2], .uniform(-2, 2))], attrs: ["axis": .int(1)], label: "middle axis"),

    OpCase(op: "matmul", inputs: [.f32([3, 4]), .f32([4, 5])]),
    OpCase(op: "matmul", inputs: [.f32([4, 3]), .f32([4, 5])], attrs: ["transpose_a": .bool(true)], label: "ta"),
    OpCase(op: "matmul", inputs: [.f32([3, 4]), .f32([5, 4])], attrs: ["transpose_b": .bool(true)], label: "tb"),
    OpCase(op: "matmul", inputs: [.f32([4, 3]), .f32([5, 4])], attrs: ["transpose_a": .bool(true), "transpose_b": .bool(true)], label: "ta tb"),
    OpCase(op: "matmul", inputs: [.f32([2, 3, 4]), .f32([2, 4, 5])], label: "batched"),
    OpCase(op: "matmul", inputs: [.f32([2, 3, 4]), .f32([4, 5])], label: "shared b"),
    OpCase(op: "matmul", inputs: [.f32([2, 3, 4]), .f32([5, 4])], attrs: ["transpose_b": .bool(true)], label: "shared b, tb"),
    OpCase(op: "matmul", inputs: [.f32([2, 4, 3]), .f32([4, 5])], attrs: ["transpose_a": .bool(true)], label: "shared b, ta"),

    // convolutions: 1D/2D/3D, strides, dilation, asymmetric padding, groups and depthwise
    OpCase(op: "conv", inputs: [.f32([2, 7, 3], .uniform(-1, 1)), .f32([3, 3, 4], .uniform(-1, 1))],
           attrs: ["strides": .ints([2]), "dilation": .ints([1]), "pads": .ints([1, 2]), "groups": .int(1)], label: "1D stride 2"),
    OpCase(op: "conv", inputs: [.f32([2, 5, 6, 4], .uniform(-1, 1)), .f32([3, 2, 2, 6], .uniform(-1, 1))],
           attrs: ["strides": .ints([1, 2]), "dilation": .ints([2, 1]), "pads": .ints([1, 1, 0, 1]), "groups": .int(2)], label: "2D groups"),
    OpCase(op: "conv", inputs: [.f32([1, 4, 5, 3], .uniform(-1, 1)), .f32([3, 3, 1, 3], .uniform(-1, 1))],
           attrs: ["strides": .ints([1, 1]), "dilation": .ints([1, 1]), "pads": .ints([1, 1, 1, 1]), "groups": .int(3)], label: "depthwise"),
    OpCase(op: "conv", inputs: [.f32([1, 3, 4, 3, 2], .uniform(-1, 1)), .f32([2, 2, 2, 2, 3], .uniform(-1, 1))],
           attrs: ["strides": .ints([1, 2, 1]), "dilation": .ints([1, 1, 2]), "pads": .ints([0, 1, 1, 0, 1, 1]), "groups": .int(1)], label: "3D"),
    OpCase(op: "conv_backward_data", inputs: [.f32([2, 3, 3, 4], .uniform(-1, 1)), .f32([3, 2, 3, 4], .uniform(-1, 1))],
           attrs: ["strides": .ints([2, 1]), "dilation": .ints([1, 1]), "pads": .ints([1, 1, 0, 0]), "groups": .int(1), "input_shape": .ints([5, 4])]),
    OpCase(op: "conv_backward_filter", inputs: [.f32([2, 5, 4, 3], .uniform(-1, 1)), .f32([2, 3, 3, 4], .uniform(-1, 1))],
           attrs: ["strides": .ints([2, 1]), "dilation": .ints([1, 1]), "pads": .ints([1, 1, 0, 0]), "groups": .int(1), "kernel": .ints([3, 2])]),

    // pooling: valid and padded ("same") windows, strides other than the pool size, 1D to 3D
    OpCase(op: "max_pool", inputs: [.f32([2, 5, 6, 3], .uniform(-1, 1))], attrs: ["pool": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([0, 1, 0, 0])]),
    OpCase(op: "max_pool", inputs: [.f32([2, 7, 3], .uniform(-1, 1))], attrs: ["pool": .ints([3]), "strides": .ints([2]), "pads": .ints([1, 1])], label: "1D padded"),
    OpCase(op: "avg_pool", inputs: [.f32([2, 5, 6, 3], .uniform(-1, 1))], attrs: ["pool": .ints([3, 2]), "strides": .ints([1, 2]), "pads": .ints([1, 1, 0, 1])]),
    OpCase(op: "avg_pool", inputs: [.f32([1, 3, 4, 5, 2], .uniform(-1, 1))], attrs: ["pool": .ints([2, 2, 2]), "strides": .ints([1, 2, 2]), "pads": .ints([0, 0, 0, 1, 1, 0])], label: "3D"),
    OpCase(op: "max_pool_backward", inputs: [.fixed([2, 4, 4, 3], .uniform(-1, 1)), .f32([2, 2, 2, 3], .uniform(-1, 1))], attrs: ["pool": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([0, 0, 0, 0])]),
    OpCase(op: "avg_pool_backward", inputs: [.f32([2, 3, 2, 3], .uniform(-1, 1))], attrs: ["pool": .ints([3, 2]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 0, 0]), "input_shape": .ints([5, 4])]),

    OpCase(op: "gemm_bias_act", inputs: [.f32([3, 4], .uniform(-1, 1)), .f32([4, 5], .uniform(-1, 1)), .f32([5], .uniform(-1, 1))],
           attrs: ["transpose_b": .bool(false), "bias": .bool(true), "residual": .bool(false), "act": .string("tanh")], label: "bias tanh"),
    OpCase(op: "gemm_bias_act", inputs: [.f32([2, 3, 4], .uniform(-1, 1)), .f32([5, 4], .uniform(-1, 1)), .f32([2, 3, 5], .uniform(-1, 1))],
           attrs: ["transpose_b": .bool(true), "bias": .bool(false), "residual": .bool(true), "act": .string("leaky_relu"), "act_alpha": .float(0.3)],
           label: "residual leaky relu"),
    OpCase(op: "gemm_bias_act", inputs: [.f32([20, 3], .uniform(-1, 1)), .f32([3, 2], .uniform(-1, 1)), .f32([2], .uniform(-1, 1))],
           attrs: ["transpose_b": .bool(false), "bias": .bool(true), "residual": .bool(false), "act": .string("none")], label: "narrow"),

    OpCase(op: "conv_bias_act", inputs: [.f32([2, 5, 6, 4], .uniform(-1, 1)), .f32([3, 2, 2, 6], .uniform(-1, 1)), .f32([6], .uniform(-1, 1))],
           attrs: ["strides": .ints([2, 1]), "dilation": .ints([1, 2]), "pads": .ints([1, 1, 0, 1]), "groups": .int(2),
                   "bias": .bool(true), "residual": .bool(false), "act": .string("tanh")], label: "bias tanh groups"),
    OpCase(op: "conv_bias_act", inputs: [.f32([2, 7, 3], .uniform(-1, 1)), .f32([3, 3, 4], .uniform(-1, 1)), .f32([4], .uniform(-1, 1)),
                                         .f32([2, 7, 4], .uniform(-1, 1))],
           attrs: ["strides": .ints([1]), "dilation": .ints([1]), "pads": .ints([1, 1]), "groups": .int(1),
                   "bias": .bool(true), "residual": .bool(true), "act": .string("elu"), "act_alpha": .float(0.5)], label: "1D bias residual elu"),
    OpCase(op: "conv_bias_act", inputs: [.f32([2, 6, 5, 2], .uniform(-1, 1)), .f32([3, 3, 2, 5], .uniform(-1, 1)), .f32([5], .uniform(-1, 1))],
           attrs: ["strides": .ints([1, 1]), "dilation": .ints([1, 1]), "pads": .ints([0, 0, 0, 0]), "groups": .int(1),
                   "bias": .bool(true), "residual": .bool(false), "act": .string("relu")], label: "few channels relu"),
    // then 2x2 max pooling (fuse-conv-pool): odd rows and columns dropped; the fast kernel, and few channels through the reference loops
    OpCase(op: "conv_bias_act", inputs: [.f32([1, 5, 6, 5], .uniform(-1, 1)), .f32([2, 2, 5, 3], .uniform(-1, 1)), .f32([3], .uniform(-1, 1))],
           attrs: ["strides": .ints([1, 1]), "dilation": .ints([1, 1]), "pads": .ints([1, 0, 0, 1]), "groups": .int(1),
                   "bias": .bool(true), "residual": .bool(false), "act": .string("tanh"), "max_pool": .ints([2, 2])], label: "bias tanh max_pool"),
    OpCase(op: "conv_bias_act", inputs: [.f32([1, 4, 5, 2], .uniform(-1, 1)), .f32([2, 2, 2, 3], .uniform(-1, 1)), .f32([3], .uniform(-1, 1))],
           attrs: ["strides": .ints([1, 1]), "dilation": .ints([1, 1]), "pads": .ints([0, 0, 0, 0]), "groups": .int(1),
                   "bias": .bool(true), "residual": .bool(false), "act": .string("none"), "max_pool": .ints([2, 2])], label: "few channels max_pool"),

    OpCase(op: "reshape", inputs: [.f32([2, 3, 4])], attrs: ["shape": .ints([6, -1])]),
    OpCase(op: "stop_gradient", inputs: [.f32([2, 3])]),
    OpCase(op: "transpose", inputs: [.f32([2, 3, 4])], attrs: ["perm": .ints([2, 0, 1])]),
    OpCase(op: "broadcast_to", inputs: [.f32([3, 1])], attrs: ["shape": .ints([2, 3, 4])]),
    OpCase(op: "broadcast_to", inputs: [.f32([1, 4]), .fixed([3, 4], .uniform(0, 1))], label: "like"),
    OpCase(op: "concat", inputs: [.f32([2, 3]), .f32([2, 1]), .f32([2, 2])], attrs: ["axis": .int(1)]),
    OpCase(op: "concat", inputs: [.f32([1, 3]), .f32([2, 3])], attrs: ["axis": .int(0)], label: "axis 0"),
    OpCase(op: "slice", inputs: [.f32([4, 5, 3])], attrs: ["begin": .ints([1, 0, 1]), "size": .ints([2, -1, 2])]),
    OpCase(op: "pad", inputs: [.f32([2, 3])], attrs: ["pads": .ints([1, 0, 2, 1]), "value": .float(0.5)]),
    OpCase(op: "allreduce_mean", inputs: [.f32([3, 5], .uniform(-2, 2))], label: "one process: the identity"),
    OpCase(op: "pack", inputs: [.f32([2, 3]), .f32([4]), .f32([1, 2, 2])]),
    OpCase(op: "cast", inputs: [.f32([2, 3])], attrs: ["dtype": .string("f32")], label: "f32 to f32"),
    OpCase(op: "cast", inputs: [.fixed([4], .exactly([1.7, -2.5, 0, 3]))], attrs: ["dtype": .string("i32")], label: "f32 to i32"),
    OpCase(op: "cast", inputs: [.i32([3], [-4, 0, 9])], attrs: ["dtype": .string("f32")], label: "i32 to f32"),
    OpCase(op: "gather", inputs: [.f32([5, 3]), .i32([2, 2], [4, 0, 4, 2])]),
    // units 3 (not a multiple of the vector width) and 9 (one vector and a tail)
    OpCase(op: "lstm_cell_state", inputs: [.f32([2, 12], .uniform(-3, 3)), .f32([2, 3], .uniform(-2, 2))]),
    OpCase(op: "lstm_cell_state", inputs: [.f32([3, 36], .uniform(-3, 3)), .f32([3, 9], .uniform(-2, 2))], label: "units 9"),
    OpCase(op: "lstm_hidden", inputs: [.f32([2, 12], .uniform(-3, 3)), .f32([2, 3], .uniform(-2, 2))]),
    OpCase(op: "lstm_hidden", inputs: [.f32([3, 36], .uniform(-3, 3)), .f32([3, 9], .uniform(-2, 2))], label: "units 9"),
    // A fused chain: whole, single-value and trailing-row operands, a unary op with an alpha; 1100 elements cross a tile.
    OpCase(op: "fused_elementwise", inputs: [.f32([2, 550], .uniform(-2, 2)), .f32([], .uniform(0.5, 1)), .f32([550], .uniform(-1, 1)),
                                            .f32([2, 550], .uniform(0.5, 2))],
           attrs: ["program": .string("mul(x0,x1);add(t0,x2);elu@3f000000(t1);div(t2,x3);maximum(t3,x2)")]),
    // A relu gradient as the fusion pass makes it: a comparison writing 1 or 0, then select with a single-value branch.
    OpCase(op: "fused_elementwise", inputs: [.f32([3, 700], .uniform(-1, 1)), .f32([], .uniform(-0.2, 0.2)), .f32([3, 700], .uniform(-2, 2))],
           attrs: ["program": .string("greater(x0,x1);select(t0,x2,x1);less_equal(t1,x0);select(t2,t1,x0)")], label: "comparisons and select"),
    // A dropout as the fusion pass makes it, in shard 2 of a data-parallel batch (its draw starts 2 results in).
    OpCase(op: "fused_elementwise", inputs: [.f32([3, 700], .uniform(-1, 1)), .f32([], .uniform(1, 2))],
           attrs: ["program": .string("random_bernoulli@3f400000#2a+2();mul(x0,t0);mul(t1,x1)")], label: "dropout, shard 2"),
    // Softmax cross-entropy: from logits and on clipped probabilities (Keras's two paths), leading dims, its gradient and the fused pair.
    OpCase(op: "softmax_cross_entropy", inputs: [.f32([4, 5], .uniform(-2, 2)), .fixed([4, 5], .uniform(0, 1))], attrs: ["from_logits": .bool(true)],
           label: "from logits"),
    OpCase(op: "softmax_cross_entropy", inputs: [.f32([2, 3, 5], .uniform(-2, 2)), .fixed([2, 3, 5], .uniform(0, 1))], attrs: ["from_logits": .bool(false)],
           label: "probabilities"),
    OpCase(op: "softmax_cross_entropy_grad", inputs: [.f32([3, 7], .uniform(-2, 2)), .fixed([3, 7], .uniform(0, 1)), .fixed([3], .uniform(-1, 1))],
           attrs: ["from_logits": .bool(false)]),
    OpCase(op: "softmax_cross_entropy_fused", inputs: [.f32([6, 10], .uniform(-3, 3)), .fixed([6, 10], .uniform(0, 1)), .fixed([6], .uniform(0, 1))],
           attrs: ["from_logits": .bool(false)], label: "probabilities"),
    OpCase(op: "softmax_cross_entropy_fused", inputs: [.f32([6, 10], .uniform(-3, 3)), .fixed([6, 10], .uniform(0, 1)), .fixed([6], .uniform(0, 1))],
           attrs: ["from_logits": .bool(true)], label: "from logits"),
    OpCase(op: "softmax_cross_entropy", inputs: [.f32([4, 3], .uniform(-3, 3)), .fixed([4, 3], .uniform(0, 1))],
           attrs: ["from_logits": .bool(false), "activation": .string("sigmoid")], label: "sigmoid probabilities"),
    OpCase(op: "softmax_cross_entropy", inputs: [.f32([5, 1], .uniform(-3, 3)), .fixed([5, 1], .uniform(0, 1))],
           attrs: ["from_logits": .bool(true), "activation": .string("sigmoid")], label: "sigmoid logits"),
    OpCase(op: "softmax_cross_entropy_fused", inputs: [.f32([300, 2], .uniform(-4, 4)), .fixed([300, 2], .uniform(0, 1)), .fixed([300], .uniform(0, 1))],
           attrs: ["from_logits": .bool(false), "activation": .string("sigmoid")], label: "sigmoid, rows across chunks"),
    OpCase(op: "softmax_cross_entropy_fused", inputs: [.f32([7, 3], .uniform(-4, 4)), .fixed([7, 3], .uniform(0, 1)), .fixed([7], .uniform(0, 1))],
           attrs: ["from_logits": .bool(true), "activation": .string("sigmoid")], label: "sigmoid logits"),
    OpCase(op: "moments", inputs: [.f32([70, 5], .uniform(-2, 3))], label: "rows across blocks"),
    OpCase(op: "moments", inputs: [.f32([2, 3, 4, 6], .uniform(-2, 3))]),
    OpCase(op: "view", inputs: [.f32([4, 6])], attrs: ["shape": .ints([2, 5]), "offset": .int(13)]),
    OpCase(op: "scatter_add", inputs: [.f32([4, 3]), .i32([4], [1, 3, 1, 0])], attrs: ["rows": .int(5)]),
    OpCase(op: "dim_size", inputs: [.fixed([2, 3, 4], .uniform(0, 1))], attrs: ["axes": .ints([0, 2])]),
    OpCase(op: "random_uniform", inputs: [.fixed([3, 5], .uniform(0, 1))], attrs: ["seed": .int(3), "minval": .float(-1), "maxval": .float(2)]),
    OpCase(op: "random_normal", inputs: [], attrs: ["seed": .int(4), "shape": .ints([4, 3]), "mean": .float(1), "stddev": .float(0.5)]),
    OpCase(op: "random_bernoulli", inputs: [.fixed([17], .uniform(0, 1))], attrs: ["seed": .int(5), "p": .float(0.3)]),
    OpCase(op: "random_bernoulli", inputs: [.fixed([4, 5], .uniform(0, 1))], attrs: ["seed": .int(5), "p": .float(0.3), "shard": .int(3)],
           label: "shard 3: elements 60..<80 of the draw"),
    OpCase(op: "random_normal", inputs: [.fixed([7], .uniform(0, 1))], attrs: ["seed": .int(9), "shard": .int(1)], label: "shard 1, odd size"),
]

/// rnn_sequence for every cell: units 3 (scalar lanes only) and 9 (one AVX2
/// vector and a tail), masked and not, forward and go_backwards, with a
/// random initial state and with zeros (a layer without initial_state); and
/// one rnn_sequence_grad row per cell on arbitrary states.
private func recurrentSequenceCases() -> [OpCase] {
    let cells: [(String, gates: Int, states: Int, gradWidth: Int)] =
        [("simple_rnn", 1, 1, 2), ("lstm", 4, 2, 5), ("gru", 3, 1, 7), ("gru_reset_before", 3, 1, 5)]
    let batch = 2, time = 3
    var out: [OpCase] = []
    for (cell, gates, states, gradWidth) in cells {
        for (units, masked, backwards, zeroState) in [(3, false, false, false), (3, true, true, false), (9, true, false, true), (9, false, true, false)] {
            let n = units, gn = gates * units
            let h: InputSpec = zeroState ? .f32([batch, n], .exactly(Array(repeating: 0, count: batch * n))) : .f32([batch, n], .uniform(-1, 1))
            var ins: [InputSpec] = [.f32([batch, time, gn], .uniform(-1.5, 1.5)), .f32([n, gn], .uniform(-0.6, 0.6)), h]
            if states == 2 { ins.append(zeroState ? h : .f32([batch, n], .uniform(-1, 1))) }
            if masked { ins.append(.fixed([batch, time], .exactly([1, 0, 1, 0, 1, 1]))) }
            if cell == "gru" { ins.append(.f32([gn], .uniform(-0.5, 0.5))) }
            let attrs: Attributes = ["cell": .string(cell), "go_backwards": .bool(backwards), "masked": .bool(masked)]
            let label = "\(cell) units \(units)\(masked ? " masked" : "")\(backwards ? " backwards" : "")\(zeroState ? " zero state" : "")"
            out.append(OpCase(op: "rnn_sequence", inputs: ins, attrs: attrs, label: label))
            if units == 9 && masked {
                let st: InputSpec = .fixed([batch, time, states * n], .uniform(-1, 1))
                out.append(OpCase(op: "rnn_sequence_grad", inputs: [st, st] + ins, attrs: attrs, label: label))
                _ = gradWidth
            }
        }
    }
    return out
}

/// Ops without inputs or with effects, exercised by the runtime tests.
let structuralOps: Set<String> = ["input", "parameter", "constant", "assign", "fused_update", "gemm_update"]  // the update ops: UpdateFusionTests
