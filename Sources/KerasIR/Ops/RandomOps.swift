import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// random_uniform / random_normal / random_bernoulli {seed, ...}: shaped like
/// their optional template input, or by a `shape` attribute. Each run of a
/// plan draws afresh (the plan's counter is part of the key), and a draw is a
/// pure function of (seed, counter, index). With `shard` k (data
/// parallelism: process k's equal part of a global batch) element i is
/// element i + k × (the result's size) of the draw, the one the whole batch
/// would give that row in one process.
private struct RandomSpec {
    var name: String
    var dist: ck_random_dist
    var a: (String, Float)
    var b: (String, Float)
    var reference: (_ bits: (Int) -> Double, _ i: Int, _ a: Double, _ b: Double) -> Double
}

private let u24 = 1.0 / 16777216.0

private let randomSpecs: [RandomSpec] = [
    RandomSpec(name: "random_uniform", dist: CK_RANDOM_UNIFORM, a: ("minval", 0), b: ("maxval", 1),
               reference: { bits, i, lo, hi in lo + (hi - lo) * (bits(i) * u24) }),
    RandomSpec(name: "random_normal", dist: CK_RANDOM_NORMAL, a: ("mean", 0), b: ("stddev", 1),
               reference: { bits, i, mean, sd in
                   let k = i & ~1
                   let u1 = (bits(k) + 1) * u24, u2 = bits(k + 1) * u24
                   let r = (-2 * log(u1)).squareRoot(), t = 2 * Double.pi * u2
                   return mean + sd * r * (i & 1 == 1 ? sin(t) : cos(t))
               }),
    RandomSpec(name: "random_bernoulli", dist: CK_RANDOM_BERNOULLI, a: ("p", 0.5), b: ("unused", 0),
               reference: { bits, i, p, _ in bits(i) * u24 < p ? 1 : 0 }),
]

private func randomOp(_ spec: RandomSpec) -> OpDef {
    OpDef(spec.name, arity: .range(0, 1), isPure: false,
          shape: { ctx in
              _ = try ctx.attrs.int("seed")
              if ctx.inputs.count == 1 { return .f32(ctx.inputs[0].shape) }
              let shape = try ctx.attrs.ints("shape")
              guard shape.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("shape \(shape) must be known without a template input") }
              return .f32(shape)
          },
          differentiability: .notDifferentiable(reason: "a random draw does not depend on its template's values"),
          reference: { ctx in
              let seed = UInt64(bitPattern: Int64(try ctx.attrs.int("seed")))
              let a = Double(try ctx.attrs.float(spec.a.0, default: spec.a.1))
              let b = Double(try ctx.attrs.float(spec.b.0, default: spec.b.1))
              let counter = ctx.randomCounter
              let n = ctx.type.shape.reduce(1, *), first = try ctx.attrs.int("shard", default: 0) * n
              let bits = { (i: Int) in Double(ck_random_bits(seed, counter, UInt64(i))) }  // i: the index in the whole draw
              return RefTensor(.f32, ctx.type.shape, (0..<n).map { spec.reference(bits, $0 + first, a, b) })
          },
          lowering: .kernel { ctx in
              let seed = UInt64(bitPattern: Int64(try ctx.node.attrs.int("seed")))
              let a = try ctx.node.attrs.float(spec.a.0, default: spec.a.1)
              let b = try ctx.node.attrs.float(spec.b.0, default: spec.b.1)
              return try ctx.call(CK_FAMILY_RANDOM, op: Int32(spec.dist.rawValue),
                                  params: ck_random_call(n: Int64(ctx.outCount), seed: seed, a: a, b: b,
                                                         first: Int64(try ctx.node.attrs.int("shard", default: 0) * ctx.outCount)),
                                  [.output, .randomCounter])
          },
          cost: elementwiseCost(4))
}

let randomOps: [OpDef] = randomSpecs.map(randomOp)
