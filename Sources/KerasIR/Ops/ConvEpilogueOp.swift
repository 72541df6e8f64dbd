import CKernels

/// conv_bias_act(x, w[, bias][, residual]) {conv attributes, bias, residual, act, act_*[, max_pool]}:
/// act(conv(x, w) + bias + residual) in one convolution call whose store step
/// applies the epilogue to each tile while it is in cache (conv.c), made by
/// the fusion pass from conv -> add -> activation. bias is [OC], residual is
/// shaped like the convolution's result; attributes as for gemm_bias_act.
/// With max_pool = [p, p] (made by fuse-conv-pool from a following max
/// pooling with pool = strides and no padding) the result is then max-pooled:
/// the kernel pools each pair of output rows while it is in cache (2x2 only).
let convEpilogueOps: [OpDef] = [
    OpDef("conv_bias_act", arity: .range(2, 4),
          shape: { ctx in
              let core = try convEpilogueCoreShape(ctx.inputs, ctx.attrs, op: ctx.op)
              try checkEpilogueInputs(ctx, out: core)
              guard let pool = try convEpiloguePool(ctx.attrs, rank: core.rank - 2, op: ctx.op) else { return core }
              guard !fusedParts(ctx.attrs).residual else { throw ctx.fail("cannot pool after a residual add") }
              return .f32([core.shape[0]] + (try pool.out(Array(core.shape[1..<(core.rank - 1)]), op: ctx.op)) + [core.shape.last!])
          },
          differentiability: .vjp { b, args, g in
              guard let pool = try convEpiloguePool(args.attrs, rank: b.type(of: args.inputs[0]).rank - 2, op: "conv_bias_act") else {
                  return try epilogueVJP(b, args, g, core: "conv", coreAttrs: epilogueCoreAttrs(args.attrs))
              }
              // The pooling's gradient, then the unpooled epilogue's.
              var attrs = args.attrs
              attrs["max_pool"] = nil
              let z = try b.emit("conv_bias_act", args.inputs, attrs)
              let gz = try b.emit("max_pool_backward", [z, g], pool.attrs)
              return try epilogueVJP(b, VJPArguments(inputs: args.inputs, output: z, attrs: attrs), gz, core: "conv",
                                     coreAttrs: epilogueCoreAttrs(attrs))
          },
          reference: { ctx in
              guard let pool = try convEpiloguePool(ctx.attrs, rank: ctx.inputs[0].shape.count - 2, op: "conv_bias_act") else {
                  return try epilogueReference(ctx, core: "conv", coreAttrs: epilogueCoreAttrs(ctx.attrs))
              }
              var attrs = ctx.attrs
              attrs["max_pool"] = nil
              let core = try convEpilogueCoreShape(ctx.inputs.map { TensorType.f32($0.shape) }, attrs, op: "conv_bias_act")
              let z = try epilogueReference(ReferenceContext(inputs: ctx.inputs, attrs: attrs, type: core), core: "conv",
                                            coreAttrs: epilogueCoreAttrs(attrs))
              return try OpRegistry.standard["max_pool"]!.reference(ReferenceContext(inputs: [z], attrs: pool.attrs, type: ctx.type))
          },
          lowering: .kernel { ctx in
              let p = fusedParts(ctx.node.attrs)
              let xt = ctx.inputTypes[0], wt = ctx.inputTypes[1]
              let rank = xt.rank - 2
              let geometry = try ConvGeometry(ctx.node.attrs, rank: rank, op: "conv_bias_act")
              let yt = try convEpilogueCoreShape(ctx.inputTypes, ctx.node.attrs, op: "conv_bias_act")
              let d = geometry.desc(batch: xt.shape[0], inSpatial: Array(xt.shape[1..<(1 + rank)]), outSpatial: Array(yt.shape[1..<(1 + rank)]),
                                    kernel: Array(wt.shape[0..<rank]), inChannels: xt.shape.last!, outChannels: wt.shape.last!)
              var withEpilogue = d
              if let act = p.act, let (op, alpha) = unaryKernel(act, p.actAttrs) {
                  withEpilogue.activation = Int32(op.rawValue) + 1
                  withEpilogue.act_params = ck_unary_params(alpha: alpha, beta: 0)
              }
              var suffix = epilogueSuffix(p)
              if let pool = try convEpiloguePool(ctx.node.attrs, rank: rank, op: "conv_bias_act") {
                  guard rank == 2, pool.pool == [2, 2] else {
                      throw IRError("conv_bias_act: the kernels pool only 2x2 windows after a 2-D convolution, got max_pool \(pool.pool) in \(rank)-D")
                  }
                  withEpilogue.max_pool_2x2 = 1
                  suffix += "+max_pool"
              }
              let bias: KernelOperand = p.bias ? .input(2) : .absent
              let residual: KernelOperand = p.residual ? .input(p.bias ? 3 : 2) : .absent
              return try convCall(ctx, 0, withEpilogue, bias: bias, residual: residual, epilogue: suffix)
          },
          cost: { ins, out, attrs in
              let rank = ins[0].rank - 2
              let core = (try? convEpilogueCoreShape(ins, attrs, op: "conv_bias_act")) ?? out
              let f = convFlops(core.shape[0], Array(core.shape[1..<(1 + rank)]), core.shape.last!, Array(ins[1].shape[0..<rank]), ins[1].shape[rank])
              return Cost(flops: f, bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
          }).fusing { attrs in
              epilogueSourceOps("conv")(attrs) + (attrs["max_pool"] == nil ? [] : ["max_pool"])
          },
]

/// The convolution's result before any pooling.
func convEpilogueCoreShape(_ inputs: [TensorType], _ attrs: Attributes, op: String) throws -> TensorType {
    try OpRegistry.standard.lookup("conv").shape(ShapeContext(op: op, inputs: Array(inputs.prefix(2)),
                                                              attrs: epilogueCoreAttrs(attrs), declared: nil))
}

/// The max pooling after the epilogue (pool = strides, no padding), if any.
func convEpiloguePool(_ attrs: Attributes, rank: Int, op: String) throws -> PoolWindow? {
    guard attrs["max_pool"] != nil else { return nil }
    let pool = try attrs.ints("max_pool")
    guard pool.count == rank, pool.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }) else {
        throw ShapeError("\(op) expects max_pool of \(rank) positive sizes, got \(pool)")
    }
    return PoolWindow(pool: pool, strides: pool, pads: [Int](repeating: 0, count: 2 * rank))
}
