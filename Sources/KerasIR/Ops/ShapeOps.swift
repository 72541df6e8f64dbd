import CKernels

private let U = TensorType.unknown

// MARK: - Shape arithmetic shared by rules and lowering

/// reshape's target: positive sizes and at most one -1, inferred from the
/// element count (unknown while the input has unknown dimensions).
private func reshapeTarget(_ x: TensorType, _ target: [Int], op: String) throws -> [Int] {
    let inferred = target.indices.filter { target[$0] == -1 }
    guard inferred.count <= 1, target.allSatisfy({ $0 == -1 || ($0 >= 0 && $0 <= TensorType.maxDimension) }) else {
        throw ShapeError("\(op) target \(target) may hold sizes and at most one -1")
    }
    try TensorType(x.dtype, target).checkSize()
    let known = target.filter { $0 != -1 }.reduce(1, *)
    var out = target
    if let n = x.elementCount {
        if let i = inferred.first {
            guard known > 0, n % known == 0 else {
                throw ShapeError("\(op) cannot reshape \(x) (\(n) elements) into \(target)")
            }
            out[i] = n / known
        } else if n != known {
            throw ShapeError("\(op) cannot reshape \(x) (\(n) elements) into \(target) (\(known) elements)")
        }
    } else if let i = inferred.first {
        out[i] = U
    }
    return out
}

/// A shape written for reshape: unknown dimensions become -1 (at most one).
func reshapeSpec(_ t: TensorType, layer: String?) throws -> [Int] {
    if t.shape.filter({ $0 == U }).count > 1 {
        throw IRError.at(layer: layer, "cannot restore shape \(t) with several unknown dimensions")
    }
    return t.shape
}

private func slicePlan(_ x: TensorType, begin: [Int], size: [Int], op: String) throws -> [Int] {
    guard begin.count == x.rank, size.count == x.rank else {
        throw ShapeError("\(op) expects begin and size of rank \(x.rank) for \(x), got \(begin) and \(size)")
    }
    var out: [Int] = []
    for i in 0..<x.rank {
        let d = x.shape[i], b = begin[i], s = size[i]
        guard b >= 0, s >= -1, b <= TensorType.maxDimension, s <= TensorType.maxDimension else {
            throw ShapeError("\(op) begin \(begin) and size \(size) must be in [0, \(TensorType.maxDimension)]")
        }
        if s == -1 {
            if d == U { guard b == 0 else { throw ShapeError("\(op) cannot start at \(b) on unknown axis \(i) of \(x)") }; out.append(U) }
            else {
                guard b <= d else { throw ShapeError("\(op) begin \(b) is past the end of axis \(i) of \(x)") }
                out.append(d - b)
            }
        } else {
            if d != U { guard b + s <= d else { throw ShapeError("\(op) [\(b), \(b + s)) is outside axis \(i) of \(x)") } }
            out.append(s)
        }
    }
    return out
}

private func padPairs(_ x: TensorType, _ pads: [Int], op: String) throws -> [(Int, Int)] {
    guard pads.count == 2 * x.rank else {
        throw ShapeError("\(op) expects \(2 * x.rank) padding sizes (before, after per axis) for \(x), got \(pads.count)")
    }
    guard pads.allSatisfy({ $0 >= 0 && $0 <= TensorType.maxDimension }) else {
        throw ShapeError("\(op) padding \(pads) must be in [0, \(TensorType.maxDimension)]")
    }
    return (0..<x.rank).map { (pads[2 * $0], pads[2 * $0 + 1]) }
}

private func broadcastTarget(_ ctx: ShapeContext) throws -> [Int] {
    let x = ctx.inputs[0]
    let target: [Int]
    if ctx.inputs.count == 2 { target = ctx.inputs[1].shape } else {
        target = try ctx.attrs.ints("shape")
    }
    guard target.count >= x.rank else { throw ctx.fail("cannot broadcast \(x) to lower rank \(target.count)") }
    let padded = [Int](repeating: 1, count: target.count - x.rank) + x.shape
    var out = target
    for i in 0..<target.count {
        if out[i] == -1 && ctx.inputs.count == 1 { out[i] = padded[i] }
        let s = padded[i]
        guard s == 1 || s == out[i] || s == U || out[i] == U else {
            throw ctx.fail("cannot broadcast \(x) to \(TensorType(x.dtype, out))")
        }
        if out[i] == U && s != 1 { out[i] = s }
    }
    return out
}

private func concatAxis(_ ctx: ShapeContext) throws -> Int {
    try normalizeAxes([try ctx.attrs.int("axis")], rank: ctx.inputs[0].rank, op: ctx.op)[0]
}

// MARK: - Lowering helpers

/// A strided copy from `src` (with its own strides and offset) into a
/// contiguous or strided destination, on the 32-bit copy kernel.
/// One strided copy of 32-bit elements from `src` to `dst`.
func copyCall(_ ctx: LoweringContext, shape: [Int], src: KernelOperand, srcStrides: [Int],
                      dst: KernelOperand, dstStrides: [Int], detail: String = "") throws -> KernelCall {
    try ctx.call(CK_FAMILY_COPY, params: try makeCopyDesc(shape, src: srcStrides, dst: dstStrides), [src, dst], detail: detail)
}

private func fillBits(_ dtype: DType, _ v: Float) -> UInt32 {
    // pad's shape rule has checked that an i32 fill value is a whole int32.
    dtype == .f32 ? v.bitPattern : UInt32(bitPattern: Int32(exactly: v) ?? 0)
}

// MARK: - Ops

let shapeOps: [OpDef] = [
    OpDef("reshape", arity: .exactly(1),
          shape: { ctx in
              TensorType(ctx.inputs[0].dtype, try reshapeTarget(ctx.inputs[0], try ctx.attrs.ints("shape"), op: ctx.op))
          },
          differentiability: .vjp { b, args, g in
              [try b.reshape(g, reshapeSpec(b.type(of: args.inputs[0]), layer: b.currentLayer))]
          },
          reference: { ctx in RefTensor(ctx.type.dtype, ctx.type.shape, ctx.inputs[0].data) },
          lowering: .alias, cost: { _, _, _ in Cost(flops: 0, bytes: 0) }),

    OpDef("stop_gradient", arity: .exactly(1),
          shape: { ctx in ctx.inputs[0] },
          differentiability: .notDifferentiable(reason: "stops gradients by definition"),
          reference: { ctx in ctx.inputs[0] },
          lowering: .alias, cost: { _, _, _ in Cost(flops: 0, bytes: 0) }),

    OpDef("transpose", arity: .exactly(1),
          shape: { ctx in
              let x = ctx.inputs[0]
              let perm = try ctx.attrs.ints("perm")
              guard perm.sorted() == Array(0..<x.rank) else {
                  throw ctx.fail("perm \(perm) is not a permutation of the axes of \(x)")
              }
              return TensorType(x.dtype, perm.map { x.shape[$0] })
          },
          differentiability: .vjp { b, args, g in
              let perm = try args.attrs.ints("perm")
              var inverse = perm
              for (i, p) in perm.enumerated() { inverse[p] = i }
              return [try b.transpose(g, inverse)]
          },
          reference: { ctx in
              let x = ctx.inputs[0], perm = try ctx.attrs.ints("perm")
              let outShape = ctx.type.shape, xs = rowMajorStrides(x.shape)
              var out = [Double](repeating: 0, count: x.count)
              for o in 0..<out.count {
                  let idx = unflatten(o, outShape)
                  var src = 0
                  for (i, p) in perm.enumerated() { src += idx[i] * xs[p] }
                  out[o] = x.data[src]
              }
              return RefTensor(x.dtype, outShape, out)
          },
          lowering: .kernel { ctx in
              let perm = try ctx.node.attrs.ints("perm")
              let xs = rowMajorStrides(ctx.inputTypes[0].shape)
              let out = ctx.outputType.shape
              return try copyCall(ctx, shape: out, src: .input(0), srcStrides: perm.map { xs[$0] },
                                  dst: .output, dstStrides: rowMajorStrides(out))
          },
          cost: movementCost),

    OpDef("broadcast_to", arity: .range(1, 2),
          shape: { ctx in TensorType(ctx.inputs[0].dtype, try broadcastTarget(ctx)) },
          differentiability: .vjp { b, args, g in
              let gx = try b.unbroadcast(g, to: b.type(of: args.inputs[0]))
              return args.inputs.count == 2 ? [gx, nil] : [gx]
          },
          reference: { ctx in
              let x = ctx.inputs[0]
              var out = [Double](repeating: 0, count: ctx.type.shape.reduce(1, *))
              forEachBroadcast(ctx.type.shape, [x.shape]) { o, offs in out[o] = x.data[offs[0]] }
              return RefTensor(x.dtype, ctx.type.shape, out)
          },
          lowering: .kernel { ctx in
              let out = ctx.outputType.shape
              return try copyCall(ctx, shape: out, src: .input(0), srcStrides: broadcastStrides(ctx.inputTypes[0].shape, into: out),
                                  dst: .output, dstStrides: rowMajorStrides(out))
          },
          cost: movementCost),

    OpDef("concat", arity: .atLeast(1),
          shape: { ctx in
              let first = ctx.inputs[0]
              let axis = try concatAxis(ctx)
              var total = 0
              for t in ctx.inputs {
                  guard t.dtype == first.dtype, t.rank == first.rank,
                        (0..<t.rank).allSatisfy({ $0 == axis || t.shape[$0] == first.shape[$0] || t.shape[$0] == U || first.shape[$0] == U })
                  else {
                      throw ctx.fail("on axis \(axis) expects matching inputs, got " + ctx.inputs.map(\.description).joined(separator: ", "))
                  }
                  total = (total == U || t.shape[axis] == U) ? U : total + t.shape[axis]
              }
              var shape = first.shape
              shape[axis] = total
              return TensorType(first.dtype, shape)
          },
          differentiability: .vjp { b, args, g in
              let rank = b.type(of: g).rank
              let axis = try normalizeAxes([try args.attrs.int("axis")], rank: rank, op: "concat")[0]
              var offset = 0
              var grads: [Value?] = []
              for x in args.inputs {
                  let size = b.type(of: x).shape[axis]
                  guard size != U else {
                      throw IRError.at(layer: b.currentLayer, "concat gradient: axis \(axis) of \(b.type(of: x)) is unknown")
                  }
                  var begin = [Int](repeating: 0, count: rank), sizes = [Int](repeating: -1, count: rank)
                  begin[axis] = offset
                  sizes[axis] = size
                  grads.append(try b.emit("slice", [g], ["begin": .ints(begin), "size": .ints(sizes)]))
                  offset += size
              }
              return grads
          },
          reference: { ctx in
              let axis = try normalizeAxes([try ctx.attrs.int("axis")], rank: ctx.type.rank, op: "concat")[0]
              let out = ctx.type.shape
              let outer = out[..<axis].reduce(1, *), inner = out[(axis + 1)...].reduce(1, *)
              var data: [Double] = []
              data.reserveCapacity(out.reduce(1, *))
              for o in 0..<outer {
                  for x in ctx.inputs {
                      let chunk = x.shape[axis] * inner
                      data.append(contentsOf: x.data[(o * chunk)..<((o + 1) * chunk)])
                  }
              }
              return RefTensor(ctx.type.dtype, out, data)
          },
          lowering: .kernels { ctx in
              // One copy per input, each into its block of the result.
              let axis = try normalizeAxes([try ctx.node.attrs.int("axis")], rank: ctx.outputType.rank, op: "concat")[0]
              let out = ctx.outputType.shape, outStrides = rowMajorStrides(out)
              var calls: [KernelCall] = []
              var offset = 0
              for (i, t) in ctx.inputTypes.enumerated() {
                  calls.append(try copyCall(ctx, shape: t.shape, src: .input(i), srcStrides: rowMajorStrides(t.shape),
                                            dst: .output(element: offset * outStrides[axis]), dstStrides: outStrides,
                                            detail: " \(i + 1) of \(ctx.inputTypes.count)"))
                  offset += t.shape[axis]
              }
              return calls
          },
          cost: movementCost),

    OpDef("slice", arity: .exactly(1),
          shape: { ctx in
              TensorType(ctx.inputs[0].dtype, try slicePlan(ctx.inputs[0], begin: try ctx.attrs.ints("begin"),
                                                          size: try ctx.attrs.ints("size"), op: ctx.op))
          },
          differentiability: .vjp { b, args, g in
              let x = b.type(of: args.inputs[0]), out = b.type(of: g)
              let begin = try args.attrs.ints("begin")
              var pads: [Int] = []
              for i in 0..<x.rank {
                  if x.shape[i] == U && out.shape[i] == U && begin[i] == 0 { pads += [0, 0]; continue }
                  guard x.shape[i] != U, out.shape[i] != U else {
                      throw IRError.at(layer: b.currentLayer, "slice gradient: axis \(i) of \(x) is unknown")
                  }
                  pads += [begin[i], x.shape[i] - begin[i] - out.shape[i]]
              }
              return [try b.emit("pad", [g], ["pads": .ints(pads), "value": .float(0)])]
          },
          reference: { ctx in
              let x = ctx.inputs[0], begin = try ctx.attrs.ints("begin")
              let out = ctx.type.shape, xs = rowMajorStrides(x.shape)
              var data = [Double](repeating: 0, count: out.reduce(1, *))
              for o in 0..<data.count {
                  let idx = unflatten(o, out)
                  data[o] = x.data[flatten(zip(idx, begin).map(+), xs)]
              }
              return RefTensor(x.dtype, out, data)
          },
          lowering: .kernel { ctx in
              let begin = try ctx.node.attrs.ints("begin")
              let xs = rowMajorStrides(ctx.inputTypes[0].shape)
              let out = ctx.outputType.shape
              return try copyCall(ctx, shape: out, src: .input(0, element: flatten(begin, xs)), srcStrides: xs, dst: .output,
                                  dstStrides: rowMajorStrides(out))
          },
          cost: movementCost),

    OpDef("pad", arity: .exactly(1),
          shape: { ctx in
              let x = ctx.inputs[0]
              let pairs = try padPairs(x, try ctx.attrs.ints("pads"), op: ctx.op)
              let value = try ctx.attrs.float("value", default: 0)
              if x.dtype == .i32 && Int32(exactly: value) == nil {
                  throw ctx.fail("value \(formatFloat(value)) is not an int32, which \(x) needs")
              }
              return TensorType(x.dtype, zip(x.shape, pairs).map { $0 == U ? U : $0 + $1.0 + $1.1 })
          },
          differentiability: .vjp { b, args, g in
              let x = b.type(of: args.inputs[0])
              let pairs = try padPairs(x, try args.attrs.ints("pads"), op: "pad")
              var sizes: [Int] = []
              for i in 0..<x.rank {
                  if x.shape[i] == U {
                      guard pairs[i] == (0, 0) else {
                          throw IRError.at(layer: b.currentLayer, "pad gradient: padded axis \(i) of \(x) is unknown")
                      }
                      sizes.append(-1)
                  } else { sizes.append(x.shape[i]) }
              }
              return [try b.emit("slice", [g], ["begin": .ints(pairs.map(\.0)), "size": .ints(sizes)])]
          },
          reference: { ctx in
              let x = ctx.inputs[0]
              let pairs = try padPairs(x.type, try ctx.attrs.ints("pads"), op: "pad")
              let value = Double(try ctx.attrs.float("value", default: 0))
              let out = ctx.type.shape, os = rowMajorStrides(out)
              var data = [Double](repeating: value, count: out.reduce(1, *))
              for (flat, v) in x.data.enumerated() {
                  let idx = unflatten(flat, x.shape)
                  data[flatten(zip(idx, pairs).map { $0 + $1.0 }, os)] = v
              }
              return RefTensor(x.dtype, out, data)
          },
          lowering: .kernels { ctx in
              // Fill the result with the value, then copy the input into its interior.
              let x = ctx.inputTypes[0]
              let pairs = try padPairs(x, try ctx.node.attrs.ints("pads"), op: "pad")
              let value = fillBits(x.dtype, try ctx.node.attrs.float("value", default: 0))
              let out = ctx.outputType.shape, os = rowMajorStrides(out)
              return [try ctx.call(CK_FAMILY_FILL, params: ck_fill_call(n: Int64(ctx.outCount), value: value), [.output]),
                      try copyCall(ctx, shape: x.shape, src: .input(0), srcStrides: rowMajorStrides(x.shape),
                                   dst: .output(element: flatten(pairs.map(\.0), os)), dstStrides: os)]
          },
          cost: movementCost),

    OpDef("cast", arity: .exactly(1),
          shape: { ctx in
              let name = try ctx.attrs.string("dtype")
              guard let dt = DType(rawValue: name) else { throw ctx.fail("to unknown dtype '\(name)' (f32 or i32)") }
              return TensorType(dt, ctx.inputs[0].shape)
          },
          differentiability: .vjp { b, args, g in
              // Only a float-to-float cast passes gradients.
              b.type(of: args.inputs[0]).dtype == .f32 && b.type(of: g).dtype == .f32 ? [g] : [nil]
          },
          reference: { ctx in
              // f32 -> f32 is the identity (kept exact so finite differences see it); to i32 truncates.
              let r = RefTensor(ctx.type.dtype, ctx.type.shape, ctx.inputs[0].data)
              return ctx.type.dtype == .i32 ? r.rounded() : r
          },
          lowering: .kernel { ctx in
              let from = ctx.inputTypes[0].dtype, to = ctx.outputType.dtype
              if from == to {
                  return try copyCall(ctx, shape: [ctx.outCount], src: .input(0), srcStrides: [1], dst: .output, dstStrides: [1])
              }
              return try ctx.call(CK_FAMILY_CAST, op: to == .i32 ? 1 : 0, params: ck_count_call(n: Int64(ctx.outCount)), [.input(0), .output])
          },
          cost: movementCost),
]
