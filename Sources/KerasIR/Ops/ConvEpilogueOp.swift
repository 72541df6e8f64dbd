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
              var d = geometry.desc(batch: xt.shape[0], inSpatial: Array(xt.shape[1..<(1 + rank)]), outSpatial: Array(yt.shape[1..<(1 + rank)]),
                                    kernel: Array(wt.shape[0..<rank]), inChannels: xt.shape.last!, outChannels: wt.shape.last!)
              var i = 2
              if p.bias { d.bias = UnsafePointer(ctx.f32(i)); i += 1 }
              if p.residual { d.residual = UnsafePointer(ctx.f32(i)) }
              if let act = p.act, let (op, alpha) = unaryKernel(act, p.actAttrs) {
                  d.activation = Int32(op.rawValue) + 1
                  d.act_params = ck_unary_params(alpha: alpha, beta: 0)
              }
              return convKernel(ctx, 0, ck_f32_conv_forward_kernel(ctx.isa)!, d, epilogue: epilogueSuffix(p))
          },
          cost: { ins, out, _ in
              let rank = ins[0].rank - 2
              let f = convFlops(out.shape[0], Array(out.shape[1..<(1 + rank)]), out.shape.last!, Array(ins[1].shape[0..<rank]), ins[1].shape[rank])
              return Cost(flops: f, bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
          }),
]
