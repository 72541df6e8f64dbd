import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lowers a broadcasting binary op to the N-d walker over the 1-D kernel.
private func lowerBinary(_ op: ck_binary_op) -> Lowering {
    .kernel { ctx in
        let walk = try binaryWalk(out: ctx.outputType.shape, a: ctx.inputTypes[0].shape, b: ctx.inputTypes[1].shape)
        let family = ctx.inputTypes[0].dtype == .f32 ? CK_FAMILY_BINARY_F32 : CK_FAMILY_BINARY_I32
        return try ctx.call(family, op: Int32(op.rawValue), params: walk, [.input(0), .input(1), .output])
    }
}

private func binaryShape(_ dtypes: Set<DType>) -> ShapeRule {
    return { ctx in
        try ctx.requireDType(0, dtypes)
        guard ctx.inputs[0].dtype == ctx.inputs[1].dtype else {
            throw ctx.fail("expects operands of one dtype, got \(ctx.inputs[0]) and \(ctx.inputs[1])")
        }
        return TensorType(ctx.inputs[0].dtype, try ctx.broadcastInputs())
    }
}

private func binaryVJP(_ rule: @escaping (GraphBuilder, _ a: Value, _ b: Value, _ out: Value, _ g: Value) throws -> (Value?, Value?))
    -> Differentiability {
    .vjp { bld, args, g in
        let a = args.inputs[0], b = args.inputs[1]
        let (ga, gb) = try rule(bld, a, b, args.output, g)
        return [try ga.map { try bld.unbroadcast($0, to: bld.type(of: a)) },
                try gb.map { try bld.unbroadcast($0, to: bld.type(of: b)) }]
    }
}

private func binaryOp(_ name: String, _ op: ck_binary_op, dtypes: Set<DType> = [.f32], flops: Int = 1,
                      reference: @escaping (Double, Double) -> Double,
                      vjp: Differentiability) -> OpDef {
    var d = OpDef(name, arity: .exactly(2), shape: binaryShape(dtypes), differentiability: vjp,
                  reference: { ctx in
                      let r = referenceBroadcast(ctx) { reference($0[0], $0[1]) }
                      return ctx.type.dtype == .i32 ? r.rounded() : r
                  },
                  lowering: lowerBinary(op), cost: elementwiseCost(flops))
    d.writesInPlaceOfInput = true
    return d
}

let elementwiseBinaryOps: [OpDef] = [
    binaryOp("add", CK_BINARY_ADD, dtypes: [.f32, .i32], reference: +,
             vjp: binaryVJP { _, _, _, _, g in (g, g) }),
    binaryOp("sub", CK_BINARY_SUB, dtypes: [.f32, .i32], reference: -,
             vjp: binaryVJP { b, _, _, _, g in (g, try b.neg(g)) }),
    binaryOp("mul", CK_BINARY_MUL, dtypes: [.f32, .i32], reference: *,
             vjp: binaryVJP { b, x, y, _, g in (try b.mul(g, y), try b.mul(g, x)) }),
    binaryOp("div", CK_BINARY_DIV, reference: /,
             vjp: binaryVJP { b, _, y, out, g in
                 let ga = try b.div(g, y)
                 return (ga, try b.neg(b.mul(ga, out)))
             }),
    binaryOp("maximum", CK_BINARY_MAX, dtypes: [.f32, .i32], reference: { $0.isNaN ? $0 : ($0 >= $1 ? $0 : $1) },
             vjp: binaryVJP { b, x, y, _, g in
                 let takeA = try b.compare("greater_equal", x, y)
                 return (try b.select(takeA, g, b.scalar(0)), try b.select(takeA, b.scalar(0), g))
             }),
    binaryOp("minimum", CK_BINARY_MIN, dtypes: [.f32, .i32], reference: { $0.isNaN ? $0 : ($0 <= $1 ? $0 : $1) },
             vjp: binaryVJP { b, x, y, _, g in
                 let takeA = try b.compare("less_equal", x, y)
                 return (try b.select(takeA, g, b.scalar(0)), try b.select(takeA, b.scalar(0), g))
             }),
    binaryOp("pow", CK_BINARY_POW, flops: 20, reference: refPow,
             vjp: binaryVJP { b, x, y, out, g in
                 // d/dx = y x^(y-1); d/dy = log(x) x^y, taken as 0 where x <= 0
                 let ga = try b.mul(g, b.mul(y, b.pow(x, b.sub(y, b.scalar(1)))))
                 let positive = try b.greater(x, b.scalar(0))
                 let safeX = try b.select(positive, x, b.scalar(1))
                 let gb = try b.select(positive, b.mul(g, b.mul(b.log(safeX), out)), b.scalar(0))
                 return (ga, gb)
             }),
]

// MARK: - Comparisons and select

private func comparisonOp(_ name: String, _ op: ck_binary_op, _ f: @escaping (Double, Double) -> Bool) -> OpDef {
    OpDef(name, arity: .exactly(2), shape: binaryShape([.f32, .i32]),
          differentiability: .notDifferentiable(reason: "a comparison's result is piecewise constant"),
          reference: { ctx in referenceBroadcast(ctx) { f($0[0], $0[1]) ? 1 : 0 } },
          lowering: lowerBinary(op), cost: elementwiseCost(1))
}

let comparisonOps: [OpDef] = [
    comparisonOp("equal", CK_BINARY_EQ, ==),
    comparisonOp("not_equal", CK_BINARY_NE, !=),
    comparisonOp("less", CK_BINARY_LT, <),
    comparisonOp("less_equal", CK_BINARY_LE, <=),
    comparisonOp("greater", CK_BINARY_GT, >),
    comparisonOp("greater_equal", CK_BINARY_GE, >=),
    OpDef("select", arity: .exactly(3),
          shape: { ctx in
              guard ctx.inputs[1].dtype == ctx.inputs[2].dtype else {
                  throw ctx.fail("expects both branches of one dtype, got \(ctx.inputs[1]) and \(ctx.inputs[2])")
              }
              return TensorType(ctx.inputs[1].dtype, try ctx.broadcastInputs())
          },
          differentiability: .vjp { b, args, g in
              let c = args.inputs[0]
              let zero = b.scalar(0)
              return [nil,
                      try b.unbroadcast(b.select(c, g, zero), to: b.type(of: args.inputs[1])),
                      try b.unbroadcast(b.select(c, zero, g), to: b.type(of: args.inputs[2]))]
          },
          reference: { ctx in referenceBroadcast(ctx) { $0[0] != 0 ? $0[1] : $0[2] } },
          lowering: .kernel { ctx in
              let walk = try ternaryWalk(out: ctx.outputType.shape, ctx.inputTypes[0].shape,
                                         ctx.inputTypes[1].shape, ctx.inputTypes[2].shape)
              return try ctx.call(CK_FAMILY_SELECT, op: ctx.inputTypes[0].dtype == .f32 ? 1 : 0, params: walk,
                                  [.input(0), .input(1), .input(2), .output])
          },
          cost: elementwiseCost(1)),
]

private func refPow(_ a: Double, _ b: Double) -> Double { pow(a, b) }
