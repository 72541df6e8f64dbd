import CKernels

/// conv_bias_act(x, w[, bias][, residual]) {conv attributes, bias, residual, act, act_*}:
/// act(conv(x, w) + bias + residual) in one convolution call whose store step
/// applies the epilogue to each tile while it is in cache (conv.c), made by
/// the fusion pass from conv -> add -> activation. bias is [OC], residual is
/// shaped like the result; attributes as for gemm_bias_act.
let convEpilogueOps: [OpDef] = [
    OpDef("conv_bias_act", arity: .range(2, 4),
          shape: { ctx in
              let core = try OpRegistry.standard.lookup("conv").shape(ShapeContext(op: ctx.op, inputs: Array(ctx.inputs.prefix(2)),
                                                                                    attrs: epilogueCoreAttrs(ctx.attrs), declared: nil))
              try checkEpilogueInputs(ctx, out: core)
              return core
          },
          differentiability: .vjp { b, args, g in try epilogueVJP(b, args, g, core: "conv", coreAttrs: epilogueCoreAttrs(args.attrs)) },
          reference: { ctx in try epilogueReference(ctx, core: "conv", coreAttrs: epilogueCoreAttrs(ctx.attrs)) },
          lowering: .kernel { ctx in
              let p = fusedParts(ctx.node.attrs)
              let xt = ctx.inputTypes[0], wt = ctx.inputTypes[1], yt = ctx.outputType
              let rank = xt.rank - 2
              let geometry = try ConvGeometry(ctx.node.attrs, rank: rank, op: "conv_bias_act")
              let d = geometry.desc(batch: xt.shape[0], inSpatial: Array(xt.shape[1..<(1 + rank)]), outSpatial: Array(yt.shape[1..<(1 + rank)]),
                                    kernel: Array(wt.shape[0..<rank]), inChannels: xt.shape.last!, outChannels: wt.shape.last!)
              var withEpilogue = d
              if let act = p.act, let (op, alpha) = unaryKernel(act, p.actAttrs) {
                  withEpilogue.activation = Int32(op.rawValue) + 1
                  withEpilogue.act_params = ck_unary_params(alpha: alpha, beta: 0)
              }
              let bias: KernelOperand = p.bias ? .input(2) : .absent
              let residual: KernelOperand = p.residual ? .input(p.bias ? 3 : 2) : .absent
              return try convCall(ctx, 0, withEpilogue, bias: bias, residual: residual, epilogue: epilogueSuffix(p))
          },
          cost: { ins, out, _ in
              let rank = ins[0].rank - 2
              let f = convFlops(out.shape[0], Array(out.shape[1..<(1 + rank)]), out.shape.last!, Array(ins[1].shape[0..<rank]), ins[1].shape[rank])
              return Cost(flops: f, bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
          }).fusing(epilogueSourceOps("conv")),
]
