import CKernels

private let noInputs: Differentiability = .vjp { _, _, _ in [] }

private func declaredShape(_ ctx: ShapeContext) throws -> TensorType {
    guard let t = ctx.declared else { throw ctx.fail("needs a declared type") }
    return t
}

/// input, parameter and constant have no inputs; their storage is bound by
/// the planner. assign writes a new value into a parameter's storage; dim_size
/// turns a shape into data once the batch size is known.
let sourceOps: [OpDef] = [assignOp()] + [
    OpDef("input", arity: .exactly(0), isPure: false, shape: declaredShape, differentiability: noInputs,
          reference: { _ in throw IRError("input values are fed, not evaluated") },
          lowering: .storage, cost: { _, _, _ in Cost(flops: 0, bytes: 0) }),
    OpDef("parameter", arity: .exactly(0), isPure: false,
          shape: { ctx in
              let t = try declaredShape(ctx)
              guard t.isFullyKnown else { throw ctx.fail("must have a fully known shape, got \(t)") }
              return t
          },
          differentiability: noInputs,
          reference: { _ in throw IRError("parameter values are fed, not evaluated") },
          lowering: .storage, cost: { _, _, _ in Cost(flops: 0, bytes: 0) }),
    OpDef("constant", arity: .exactly(0),
          shape: { ctx in
              let t = try declaredShape(ctx)
              guard let n = t.elementCount else { throw ctx.fail("must have a fully known shape, got \(t)") }
              let count: Int
              switch ctx.attrs["value"] {
              case .floats(let v)?:
                  guard t.dtype == .f32 || v.isEmpty else { throw ctx.fail("of type \(t) cannot hold float values") }
                  count = v.count
              case .ints(let v)?:
                  if t.dtype == .i32, let bad = v.first(where: { Int32(exactly: $0) == nil }) {
                      throw ctx.fail("value \(bad) does not fit in \(t)")
                  }
                  count = v.count
              default: throw ctx.fail("needs a value list")
              }
              guard count == n || count == 1 else {
                  throw ctx.fail("of type \(t) needs \(n) values (or 1 to fill), got \(count)")
              }
              return t
          },
          differentiability: noInputs,
          reference: { ctx in
              // Expanded in double precision: 8 bytes per element.
              let n = try MemoryLimit.elementCount(ctx.type.shape, "constant \(ctx.type)")
              try MemoryLimit.check("constant \(ctx.type)", count: n, elementBytes: 8, shape: ctx.type.shape)
              var data: [Double]
              switch ctx.attrs["value"] {
              case .floats(let v)?: data = v.map(Double.init)
              case .ints(let v)?: data = v.map(Double.init)
              default: data = []
              }
              if data.count == 1 && n != 1 { data = [Double](repeating: data[0], count: n) }
              return RefTensor(ctx.type.dtype, ctx.type.shape, data)
          },
          lowering: .storage, cost: { _, _, _ in Cost(flops: 0, bytes: 0) }),
    OpDef("dim_size", arity: .exactly(1),
          shape: { ctx in
              if let axes = try? ctx.attrs.ints("axes") {
                  _ = try normalizeAxes(axes, rank: ctx.inputs[0].rank, op: ctx.op)
              }
              return .f32([])
          },
          differentiability: .notDifferentiable(reason: "depends only on the input's shape"),
          reference: { ctx in
              let shape = ctx.inputs[0].shape
              let axes = try normalizeAxes(try ctx.attrs.ints("axes", default: Array(shape.indices)), rank: shape.count, op: "dim_size")
              return .scalar(Double(axes.map { shape[$0] }.reduce(1, *)))
          },
          lowering: .kernel { ctx in
              let shape = ctx.inputTypes[0].shape
              let axes = try normalizeAxes(try ctx.node.attrs.ints("axes", default: Array(shape.indices)), rank: shape.count, op: "dim_size")
              let v = Float(axes.map { shape[$0] }.reduce(1, *))
              return try ctx.call(CK_FAMILY_FILL, params: ck_fill_call(n: 1, value: v.bitPattern), [.output], detail: " \(formatFloat(v))")
          },
          cost: { _, _, _ in Cost(flops: 0, bytes: 4) }),
]

private func assignOp() -> OpDef {
    var d = OpDef("assign", arity: .exactly(2), isPure: false,
          shape: { ctx in
              guard ctx.inputs[0] == ctx.inputs[1] else {
                  throw ctx.fail("expects a value of the parameter's type \(ctx.inputs[0]), got \(ctx.inputs[1])")
              }
              return ctx.inputs[0]
          },
          differentiability: .notDifferentiable(reason: "an update of state, not a function of its inputs"),
          reference: { ctx in ctx.inputs[1] },
          lowering: .inPlace { ctx in
              // Nothing runs when the value was computed in the parameter's storage.
              let desc = try makeCopyDesc([ctx.outCount], src: [1], dst: [1])
              return [try ctx.call(CK_FAMILY_COPY, params: desc, [.input(1), .input(0)])]
          },
          cost: movementCost)
    d.writtenParameters = { _ in [0] }
    return d
}
