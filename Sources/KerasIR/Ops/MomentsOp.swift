import CKernels

/// moments(x) -> [2, C]: the mean and the biased variance of x [..., C] over
/// every axis but the last, in one pass over memory (moments.c): batch
/// normalization's statistics, made by the moments fusion pass from
/// reduce_mean(x) and reduce_mean(square(x - mean)); two views read them.
let momentsOps: [OpDef] = [
    OpDef("moments", arity: .exactly(1),
          shape: { ctx in
              try ctx.requireDType(0, [.f32])
              let x = ctx.inputs[0]
              guard x.rank >= 2, let c = x.shape.last, c != TensorType.unknown else {
                  throw ctx.fail("expects x [..., channels] of rank 2 or more with known channels, got \(x)")
              }
              return .f32([2, c])
          },
          differentiability: .notDifferentiable(reason: "made by the moments fusion pass after differentiation"),
          reference: { ctx in
              let x = ctx.inputs[0], c = x.shape.last!, rows = c == 0 ? 0 : x.data.count / c
              var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
              for j in 0..<c {
                  let column = (0..<rows).map { x.data[$0 * c + j] }
                  let m = rows > 0 ? column.reduce(0, +) / Double(rows) : 0
                  mean[j] = m
                  variance[j] = rows > 0 ? column.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(rows) : 0
              }
              return RefTensor(.f32, [2, c], mean + variance)
          },
          lowering: .kernel { ctx in
              let x = ctx.inputTypes[0], c = x.shape.last!, rows = c == 0 ? 0 : elementCount(x) / c
              return try ctx.call(CK_FAMILY_REDUCE, op: 100, params: ck_rows_call(rows: Int64(rows), cols: Int64(c)),
                                  [.input(0), .output, .output(element: c)])
          },
          cost: { ins, out, _ in Cost(flops: 3 * elementCount(ins[0]), bytes: (elementCount(ins[0]) + elementCount(out)) * 4) })
        .fusing { _ in ["reduce_mean", "sub", "square", "reduce_mean"] },
]
