import CKernels

/// gemm_bias_act(a, w[, bias][, residual]) {transpose_b, bias, residual, act, act_attrs...}:
/// act(a . op(w) + bias + residual) in one GEMM call with an epilogue, made by
/// the fusion pass from matmul -> add -> activation. a is [..., K], w [K, N]
/// (or [N, K] with transpose_b), bias [N], residual shaped like the result.
/// Activation attributes (alpha) are stored with the prefix "act_".
func fusedParts(_ attrs: Attributes) -> (tb: Bool, bias: Bool, residual: Bool, act: String?, actAttrs: Attributes) {
    let tb = (try? attrs.bool("transpose_b", default: false)) ?? false
    let bias = (try? attrs.bool("bias", default: false)) ?? false
    let residual = (try? attrs.bool("residual", default: false)) ?? false
    let act = try? attrs.string("act")
    var actAttrs = Attributes()
    for k in attrs.sortedKeys where k.hasPrefix("act_") { actAttrs[String(k.dropFirst(4))] = attrs[k] }
    return (tb, bias, residual, act == "none" ? nil : act, actAttrs)
}

/// The attributes of the op under an epilogue (conv geometry, matmul transposes).
func epilogueCoreAttrs(_ attrs: Attributes) -> Attributes {
    var core = Attributes()
    for k in attrs.sortedKeys where !["bias", "residual", "act", "max_pool"].contains(k) && !k.hasPrefix("act_") { core[k] = attrs[k] }
    return core
}

/// The ops a GEMM or convolution with an epilogue stands for.
func epilogueSourceOps(_ core: String) -> (Attributes) -> [String] {
    return { attrs in
        let p = fusedParts(attrs)
        return [core] + (p.bias ? ["add"] : []) + (p.residual ? ["add"] : []) + (p.act.map { [$0] } ?? [])
    }
}

/// The kernel-name suffix that shows an epilogue in plans ("+bias+relu").
func epilogueSuffix(_ p: (tb: Bool, bias: Bool, residual: Bool, act: String?, actAttrs: Attributes)) -> String {
    (p.bias ? "+bias" : "") + (p.residual ? "+residual" : "") + (p.act.map { "+\($0)" } ?? "")
}

/// Checks the epilogue operands after the first two inputs against the core op's result `out`.
func checkEpilogueInputs(_ ctx: ShapeContext, out: TensorType) throws {
    let p = fusedParts(ctx.attrs)
    guard ctx.inputs.count == 2 + (p.bias ? 1 : 0) + (p.residual ? 1 : 0) else {
        throw ctx.fail("expects \(2 + (p.bias ? 1 : 0) + (p.residual ? 1 : 0)) inputs for bias=\(p.bias) residual=\(p.residual), got \(ctx.inputs.count)")
    }
    let n = out.shape.last!
    var i = 2
    if p.bias {
        guard ctx.inputs[i] == .f32([n]) else { throw ctx.fail("expects a bias f32[\(n)], got \(ctx.inputs[i])") }
        i += 1
    }
    if p.residual {
        // The kernel reads the residual with the output's row stride: same shape, no broadcast.
        let r = ctx.inputs[i]
        let same = r.dtype == .f32 && r.rank == out.rank
            && zip(r.shape, out.shape).allSatisfy { $0 == $1 || $0 == TensorType.unknown || $1 == TensorType.unknown }
        guard same else { throw ctx.fail("expects a residual shaped like \(out), got \(r)") }
    }
    if let act = p.act, unaryKernel(act, p.actAttrs) == nil { throw ctx.fail("cannot apply '\(act)' in an epilogue") }
}

/// The unfused computation's VJP, rebuilt from the registered ops: the core
/// op on the first two inputs, then bias, residual and activation.
func epilogueVJP(_ b: GraphBuilder, _ args: VJPArguments, _ g: Value, core: String, coreAttrs: Attributes) throws -> [Value?] {
    let p = fusedParts(args.attrs)
    let x = args.inputs[0], w = args.inputs[1]
    let y = try b.emit(core, [x, w], coreAttrs)
    var z = y
    var i = 2
    let biasV = p.bias ? args.inputs[i] : nil
    if p.bias { i += 1 }
    let resV = p.residual ? args.inputs[i] : nil
    if let bv = biasV { z = try b.add(z, bv) }
    if let rv = resV { z = try b.add(z, rv) }
    var gz = g
    if let act = p.act {
        let a = try b.emit(act, [z], p.actAttrs)
        guard case .vjp(let rule)? = b.registry[act]?.differentiability else { throw IRError("\(core) epilogue: activation \(act) has no VJP") }
        gz = try rule(b, VJPArguments(inputs: [z], output: a, attrs: p.actAttrs), g)[0]!
    }
    guard case .vjp(let coreRule)? = b.registry[core]?.differentiability else { throw IRError("\(core) has no VJP") }
    let gx = try coreRule(b, VJPArguments(inputs: [x, w], output: y, attrs: coreAttrs), gz)
    var out: [Value?] = [gx[0], gx[1]]
    if let bv = biasV { out.append(try b.unbroadcast(gz, to: b.type(of: bv))) }
    if let rv = resV { out.append(try b.unbroadcast(gz, to: b.type(of: rv))) }
    return out
}

/// The unfused computation in the reference evaluator.
func epilogueReference(_ ctx: ReferenceContext, core: String, coreAttrs: Attributes) throws -> RefTensor {
    let p = fusedParts(ctx.attrs)
    let reg = OpRegistry.standard
    var z = try reg[core]!.reference(ReferenceContext(inputs: [ctx.inputs[0], ctx.inputs[1]], attrs: coreAttrs, type: ctx.type))
    for extra in ctx.inputs.dropFirst(2) {
        z = try reg["add"]!.reference(ReferenceContext(inputs: [z, extra], attrs: [:], type: ctx.type))
    }
    if let act = p.act { z = try reg[act]!.reference(ReferenceContext(inputs: [z], attrs: p.actAttrs, type: ctx.type)) }
    return z
}

let fusedOps: [OpDef] = [
    OpDef("gemm_bias_act", arity: .range(2, 4),
          shape: { ctx in
              let p = fusedParts(ctx.attrs)
              let a = ctx.inputs[0], w = ctx.inputs[1]
              guard a.dtype == .f32, w.dtype == .f32, a.rank >= 2, w.rank == 2 else { throw ctx.fail("expects f32 a [..., K] and w of rank 2, got \(a) and \(w)") }
              let k = p.tb ? w.shape[1] : w.shape[0], n = p.tb ? w.shape[0] : w.shape[1]
              guard a.shape.last == k || a.shape.last == TensorType.unknown else {
                  throw ctx.fail("expects inner dimensions to agree, got \(a) and \(w)")
              }
              let out = TensorType.f32(Array(a.shape.dropLast()) + [n])
              try checkEpilogueInputs(ctx, out: out)
              return out
          },
          differentiability: .vjp { b, args, g in
              let tb = fusedParts(args.attrs).tb
              return try epilogueVJP(b, args, g, core: "matmul", coreAttrs: ["transpose_a": .bool(false), "transpose_b": .bool(tb)])
          },
          reference: { ctx in try epilogueReference(ctx, core: "matmul", coreAttrs: ["transpose_b": .bool(fusedParts(ctx.attrs).tb)]) },
          lowering: .kernel { ctx in
              let p = fusedParts(ctx.node.attrs)
              let at = ctx.inputTypes[0], wt = ctx.inputTypes[1]
              let k = at.shape.last!, n = ctx.outputType.shape.last!, m = elementCount(at) / max(k, 1)
              var args = ck_gemm_call()
              args.trans_a = 0
              args.trans_b = p.tb ? 1 : 0
              args.m = Int64(m); args.n = Int64(n); args.k = Int64(k)
              args.alpha = 1; args.beta = 0
              args.lda = Int64(k); args.ldb = Int64(wt.shape[1]); args.ldc = Int64(n)
              args.batch = 1
              if p.residual { args.ld_residual = Int64(n) }
              if let act = p.act, let (op, alpha) = unaryKernel(act, p.actAttrs) {
                  args.activation = Int32(op.rawValue) + 1
                  args.act_params = ck_unary_params(alpha: alpha, beta: 0)
              }
              let bias: KernelOperand = p.bias ? .input(2) : .absent
              let residual: KernelOperand = p.residual ? .input(p.bias ? 3 : 2) : .absent
              return try gemmCall(ctx, args, [.input(0), .input(1), .output, bias, residual], detail: epilogueSuffix(p))
          },
          cost: { ins, out, _ in
              let k = ins[0].shape.last.map { Swift.max($0, 1) } ?? 1
              return Cost(flops: 2 * elementCount(out) * k, bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
          }).fusing(epilogueSourceOps("matmul")),
    gemmUpdateOp(),
]

/// gemm_update(w, a, b, lr) {transpose_a, transpose_b}: w <- w - lr * op(a) . op(b)
/// as one GEMM that accumulates into the parameter (C = w, alpha = -lr read
/// at run time, beta = 1); with {momentum} and inputs (m, w, a, b, lr), SGD
/// with momentum: m <- momentum * m - lr * op(a) . op(b) in C, and the
/// finished tile added into w. Plain SGD's and momentum SGD's update of a
/// Dense kernel made in its weight-gradient GEMM, so the gradient never
/// exists as a tensor. Made by the update fusion pass; an update op, so it
/// runs after every read of the parameters. The result names input 0.
private func gemmUpdateOp() -> OpDef {
    func parts(_ attrs: Attributes) throws -> (ta: Bool, tb: Bool, momentum: Float?) {
        (try attrs.bool("transpose_a", default: false), try attrs.bool("transpose_b", default: false),
         attrs["momentum"] == nil ? nil : Float(try attrs.float("momentum")))
    }
    var d = OpDef("gemm_update", arity: .range(4, 5), isPure: false,
          shape: { ctx in
              let (ta, tb, mu) = try parts(ctx.attrs)
              let first = mu == nil ? 1 : 2
              guard ctx.inputs.count == first + 3 else { throw ctx.fail("expects \(first + 3) inputs \(mu == nil ? "(w, a, b, lr)" : "(m, w, a, b, lr) with momentum"), got \(ctx.inputs.count)") }
              let w = ctx.inputs[0], a = ctx.inputs[first], b = ctx.inputs[first + 1], lr = ctx.inputs[first + 2]
              guard ctx.inputs.allSatisfy({ $0.dtype == .f32 }), w.rank == 2, a.rank == 2, b.rank == 2, w.isFullyKnown, lr.elementCount == 1,
                    ctx.inputs.prefix(first).allSatisfy({ $0 == w }) else {
                  throw ctx.fail("expects f32 parameters [m, n] alike, a and b of rank 2 and a single learning rate, got \(ctx.inputs)")
              }
              let m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1]
              let k2 = tb ? b.shape[1] : b.shape[0], n = tb ? b.shape[0] : b.shape[1]
              guard m == w.shape[0], n == w.shape[1], k == k2 || k == TensorType.unknown || k2 == TensorType.unknown else {
                  throw ctx.fail("expects op(a) . op(b) shaped like \(w), got \(a) and \(b) with transpose_a=\(ta) transpose_b=\(tb)")
              }
              return w
          },
          differentiability: .notDifferentiable(reason: "an update of state, not a function of its inputs"),
          reference: { ctx in
              let mu = try parts(ctx.attrs).momentum
              let first = mu == nil ? 1 : 2
              let mm = try OpRegistry.standard["matmul"]!.reference(ReferenceContext(inputs: [ctx.inputs[first], ctx.inputs[first + 1]],
                                                                                   attrs: ctx.attrs, type: ctx.type))
              let lr = ctx.inputs[first + 2].data[0]
              let scale = Double(mu ?? 1)
              return RefTensor(.f32, ctx.type.shape, zip(ctx.inputs[0].data, mm.data).map { scale * $0 - lr * $1 })
          },
          lowering: .inPlace { ctx in
              let (ta, tb, mu) = try parts(ctx.node.attrs)
              let first = mu == nil ? 1 : 2
              let at = ctx.inputTypes[first], bt = ctx.inputTypes[first + 1], wt = ctx.inputTypes[0]
              var args = ck_gemm_call()
              args.trans_a = ta ? 1 : 0
              args.trans_b = tb ? 1 : 0
              args.m = Int64(wt.shape[0]); args.n = Int64(wt.shape[1]); args.k = Int64(ta ? at.shape[0] : at.shape[1])
              args.beta = mu ?? 1
              args.lda = Int64(at.shape[1]); args.ldb = Int64(bt.shape[1]); args.ldc = Int64(wt.shape[1])
              args.batch = 1
              // alpha = -lr, read when the call runs; with momentum, C is m and the tile is added into w.
              var accumulate = KernelOperand.absent
              if mu != nil { accumulate = .input(1); args.ld_accumulate = Int64(wt.shape[1]) }
              return [try gemmCall(ctx, args, [.input(first), .input(first + 1), .input(0), .absent, .absent, accumulate, .input(first + 2)],
                                   detail: mu == nil ? " w-=lr*AB" : " m=mu*m-lr*AB,w+=m")]
          },
          cost: { ins, out, attrs in
              let first = attrs["momentum"] == nil ? 1 : 2
              let ta = (try? attrs.bool("transpose_a", default: false)) ?? false
              let k = Swift.max(ta ? ins[first].shape[0] : ins[first].shape[1], 1)
              return Cost(flops: 2 * elementCount(out) * k, bytes: (elementCount(ins[first]) + elementCount(ins[first + 1]) + 2 * first * elementCount(out)) * 4)
          })
    d.writtenParameters = { node in node.attrs["momentum"] == nil ? [0] : [0, 1] }
    d.fusedOps = { attrs in
        attrs["momentum"] == nil ? ["matmul", "mul", "sub", "assign"] : ["matmul", "mul", "mul", "sub", "assign", "add", "assign"]
    }
    return d
}
