import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let seluAlpha = 1.67326324235437728481
let seluScale = 1.05070098735548049342

/// One elementwise f32 activation or math function.
private struct UnarySpec {
    var name: String
    var kernel: ck_unary_op
    var flops: Int
    /// attrs that feed the kernel's alpha (e.g. elu's alpha), with defaults.
    var alphaAttr: (String, Float)? = nil
    var reference: (_ x: Double, _ alpha: Double) -> Double
    var differentiability: Differentiability
}

private func gradUnary(_ rule: @escaping (GraphBuilder, _ x: Value, _ y: Value, _ g: Value, Attributes) throws -> Value)
    -> Differentiability {
    .vjp { b, a, g in [try rule(b, a.inputs[0], a.output, g, a.attrs)] }
}

private func alpha(_ attrs: Attributes, _ key: String, _ def: Float) -> Float {
    (try? attrs.float(key, default: def)) ?? def
}

private let invSqrt2 = 0.70710678118654752440
private let invSqrt2Pi = 0.39894228040143267794
private let gTanhC = 0.7978845608028654
private let gTanhK = 0.044715

private let unarySpecs: [UnarySpec] = [
    UnarySpec(name: "neg", kernel: CK_UNARY_NEG, flops: 1, reference: { x, _ in -x },
              differentiability: gradUnary { b, _, _, g, _ in try b.neg(g) }),
    UnarySpec(name: "exp", kernel: CK_UNARY_EXP, flops: 10, reference: { x, _ in exp(x) },
              differentiability: gradUnary { b, _, y, g, _ in try b.mul(g, y) }),
    UnarySpec(name: "log", kernel: CK_UNARY_LOG, flops: 10, reference: { x, _ in log(x) },
              differentiability: gradUnary { b, x, _, g, _ in try b.div(g, x) }),
    UnarySpec(name: "sqrt", kernel: CK_UNARY_SQRT, flops: 1, reference: { x, _ in sqrt(x) },
              differentiability: gradUnary { b, _, y, g, _ in try b.div(g, b.mul(y, 2)) }),
    UnarySpec(name: "rsqrt", kernel: CK_UNARY_RSQRT, flops: 2, reference: { x, _ in 1 / sqrt(x) },
              differentiability: gradUnary { b, x, y, g, _ in try b.mul(b.div(b.mul(g, y), x), -0.5) }),
    UnarySpec(name: "square", kernel: CK_UNARY_SQUARE, flops: 1, reference: { x, _ in x * x },
              differentiability: gradUnary { b, x, _, g, _ in try b.mul(g, b.mul(x, 2)) }),
    UnarySpec(name: "abs", kernel: CK_UNARY_ABS, flops: 1, reference: { x, _ in Swift.abs(x) },
              differentiability: gradUnary { b, x, _, g, _ in try b.mul(g, b.sign(x)) }),
    UnarySpec(name: "sign", kernel: CK_UNARY_SIGN, flops: 1,
              reference: { x, _ in x > 0 ? 1 : x < 0 ? -1 : x },
              differentiability: .notDifferentiable(reason: "piecewise constant: its gradient is zero")),
    UnarySpec(name: "erf", kernel: CK_UNARY_ERF, flops: 20, reference: { x, _ in erf(x) },
              differentiability: gradUnary { b, x, _, g, _ in
                  try b.mul(g, b.mul(b.exp(b.neg(b.square(x))), Float(2 / Double.pi.squareRoot())))
              }),
    UnarySpec(name: "relu", kernel: CK_UNARY_RELU, flops: 1, reference: { x, _ in x > 0 ? x : 0 },
              // relu(x) > 0 exactly when x > 0: reading the output leaves the input
              // with one consumer, so fusion can fold relu into the producing GEMM.
              differentiability: gradUnary { b, _, y, g, _ in
                  try b.select(b.greater(y, b.scalar(0)), g, b.scalar(0))
              }),
    UnarySpec(name: "sigmoid", kernel: CK_UNARY_SIGMOID, flops: 12, reference: { x, _ in 1 / (1 + exp(-x)) },
              differentiability: gradUnary { b, _, y, g, _ in
                  try b.mul(g, b.mul(y, b.sub(b.scalar(1), y)))
              }),
    UnarySpec(name: "tanh", kernel: CK_UNARY_TANH, flops: 14, reference: { x, _ in tanh(x) },
              differentiability: gradUnary { b, _, y, g, _ in
                  try b.mul(g, b.sub(b.scalar(1), b.square(y)))
              }),
    UnarySpec(name: "softplus", kernel: CK_UNARY_SOFTPLUS, flops: 22,
              reference: { x, _ in Swift.max(x, 0) + log1p(exp(-Swift.abs(x))) },
              differentiability: gradUnary { b, x, _, g, _ in try b.mul(g, b.sigmoid(x)) }),
    UnarySpec(name: "softsign", kernel: CK_UNARY_SOFTSIGN, flops: 3, reference: { x, _ in x / (1 + Swift.abs(x)) },
              differentiability: gradUnary { b, x, _, g, _ in
                  try b.div(g, b.square(b.add(b.abs(x), 1)))
              }),
    UnarySpec(name: "elu", kernel: CK_UNARY_ELU, flops: 12, alphaAttr: ("alpha", 1.0),
              reference: { x, a in x > 0 ? x : a * expm1(x) },
              differentiability: gradUnary { b, x, y, g, attrs in
                  let a = alpha(attrs, "alpha", 1)
                  return try b.select(b.greater(x, b.scalar(0)), g, b.mul(g, b.add(y, a)))
              }),
    UnarySpec(name: "selu", kernel: CK_UNARY_SELU, flops: 13,
              reference: { x, _ in seluScale * (x > 0 ? x : seluAlpha * expm1(x)) },
              differentiability: gradUnary { b, x, y, g, _ in
                  try b.select(b.greater(x, b.scalar(0)), b.mul(g, Float(seluScale)),
                               b.mul(g, b.add(y, Float(seluScale * seluAlpha))))
              }),
    UnarySpec(name: "gelu", kernel: CK_UNARY_GELU, flops: 24,
              reference: { x, _ in 0.5 * x * (1 + erf(x * invSqrt2)) },
              differentiability: gradUnary { b, x, _, g, _ in
                  // 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi)
                  let cdf = try b.mul(b.add(b.unary("erf", b.mul(x, Float(invSqrt2))), 1), 0.5)
                  let pdf = try b.mul(b.exp(b.mul(b.square(x), -0.5)), Float(invSqrt2Pi))
                  return try b.mul(g, b.add(cdf, b.mul(x, pdf)))
              }),
    UnarySpec(name: "gelu_tanh", kernel: CK_UNARY_GELU_TANH, flops: 20,
              reference: { x, _ in 0.5 * x * (1 + tanh(gTanhC * (x + gTanhK * x * x * x))) },
              differentiability: gradUnary { b, x, _, g, _ in
                  // t = tanh(c (x + k x^3)); d = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 k x^2)
                  let x2 = try b.square(x)
                  let u = try b.mul(b.add(x, b.mul(b.mul(x2, x), Float(gTanhK))), Float(gTanhC))
                  let t = try b.tanh(u)
                  let left = try b.mul(b.add(t, 1), 0.5)
                  let du = try b.mul(b.add(b.mul(x2, Float(3 * gTanhK)), 1), Float(gTanhC))
                  let right = try b.mul(b.mul(b.mul(x, b.sub(b.scalar(1), b.square(t))), du), 0.5)
                  return try b.mul(g, b.add(left, right))
              }),
    UnarySpec(name: "swish", kernel: CK_UNARY_SWISH, flops: 13, reference: { x, _ in x / (1 + exp(-x)) },
              differentiability: gradUnary { b, x, _, g, _ in
                  let s = try b.sigmoid(x)
                  return try b.mul(g, b.mul(s, b.add(b.mul(x, b.sub(b.scalar(1), s)), 1)))
              }),
    UnarySpec(name: "hard_sigmoid", kernel: CK_UNARY_HARD_SIGMOID, flops: 4,
              reference: { x, _ in Swift.min(Swift.max(x + 3, 0), 6) / 6 },
              differentiability: gradUnary { b, x, _, g, _ in
                  let inside = try b.select(b.compare("less", x, b.scalar(3)), b.mul(g, Float(1.0 / 6.0)), b.scalar(0))
                  return try b.select(b.greater(x, b.scalar(-3)), inside, b.scalar(0))
              }),
    UnarySpec(name: "leaky_relu", kernel: CK_UNARY_LEAKY_RELU, flops: 2, alphaAttr: ("alpha", 0.2),
              reference: { x, a in x > 0 ? x : a * x },
              differentiability: gradUnary { b, x, _, g, attrs in
                  try b.select(b.greater(x, b.scalar(0)), g, b.mul(g, alpha(attrs, "alpha", 0.2)))
              }),
]

private func makeUnaryOp(_ spec: UnarySpec) -> OpDef {
    var d = OpDef(
        spec.name, arity: .exactly(1),
        shape: { ctx in
            try ctx.requireDType(0, [.f32])
            return ctx.inputs[0]
        },
        differentiability: spec.differentiability,
        reference: { ctx in
            let a = Double(spec.alphaAttr.map { alpha(ctx.attrs, $0.0, $0.1) } ?? 0)
            return RefTensor(.f32, ctx.type.shape, ctx.inputs[0].data.map { spec.reference($0, a) })
        },
        lowering: .kernel { ctx in
            let params = ck_unary_params(alpha: spec.alphaAttr.map { alpha(ctx.node.attrs, $0.0, $0.1) } ?? 0, beta: 0)
            return try ctx.call(CK_FAMILY_UNARY, op: Int32(spec.kernel.rawValue), params: ck_unary_call(n: Int64(ctx.outCount), params: params),
                                [.input(0), .output])
        },
        cost: elementwiseCost(spec.flops))
    d.writesInPlaceOfInput = true
    return d
}

let elementwiseUnaryOps: [OpDef] = unarySpecs.map(makeUnaryOp)

/// The attribute a unary op's alpha comes from (elu's and leaky_relu's "alpha"), if any.
func unaryAlphaKey(_ name: String) -> String? { unarySpecs.first { $0.name == name }?.alphaAttr?.0 }

/// The C kernel and its alpha (from the op's attributes) for a unary op name,
/// for ops that apply activations inside other kernels (GEMM epilogues).
func unaryKernel(_ name: String, _ attrs: Attributes) -> (ck_unary_op, Float)? {
    guard let spec = unarySpecs.first(where: { $0.name == name }) else { return nil }
    return (spec.kernel, spec.alphaAttr.map { alpha(attrs, $0.0, $0.1) } ?? 0)
}
