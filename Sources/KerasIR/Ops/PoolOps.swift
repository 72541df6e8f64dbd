import CKernels

/// Pooling, channels-last: x [N, *spatial, C] with attributes pool, strides
/// and pads ([before, after] per spatial axis): a PoolWindow, which layers
/// build and the ops read back. Windows cover only real elements: max
/// ignores padding, average divides by the real count (Keras's "same"
/// average pooling).
public struct PoolWindow: Equatable, Sendable {
    public var rank: Int
    public var pool: [Int], strides: [Int], pads: [Int]

    /// A window over `pool.count` spatial axes; the ops' shape rules check it.
    public init(pool: [Int], strides: [Int], pads: [Int]) {
        rank = pool.count
        self.pool = pool; self.strides = strides; self.pads = pads
    }

    public var attrs: Attributes { ["pool": .ints(pool), "strides": .ints(strides), "pads": .ints(pads)] }

    init(_ attrs: Attributes, rank: Int, op: String) throws {
        self.rank = rank
        pool = try attrs.ints("pool")
        strides = try attrs.ints("strides", default: pool)
        pads = try attrs.ints("pads", default: [Int](repeating: 0, count: 2 * rank))
        guard rank >= 1 && rank <= 3, pool.count == rank, strides.count == rank, pads.count == 2 * rank else {
            throw ShapeError("\(op) expects pool and strides of \(rank) sizes and \(2 * rank) pads for \(rank) spatial dimensions, got \(pool), \(strides), \(pads)")
        }
        guard pool.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }), strides.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }),
              pads.allSatisfy({ $0 >= 0 && $0 <= TensorType.maxDimension }) else {
            throw ShapeError("\(op) pool \(pool) and strides \(strides) must be positive and pads \(pads) non-negative")
        }
        for a in 0..<rank where pads[2 * a] >= pool[a] || pads[2 * a + 1] >= pool[a] {
            throw ShapeError("\(op) padding \(pads) must be smaller than the pool size \(pool) on every axis")
        }
    }

    func out(_ spatial: [Int], op: String) throws -> [Int] {
        try (0..<rank).map { a in
            let padded = spatial[a] + pads[2 * a] + pads[2 * a + 1]
            guard padded >= pool[a] else { throw ShapeError("\(op) pool size \(pool[a]) is larger than the padded input (\(padded)) on spatial axis \(a)") }
            return (padded - pool[a]) / strides[a] + 1
        }
    }

    func desc(batch: Int, inSpatial: [Int], outSpatial: [Int], channels: Int) -> ck_conv_desc {
        var d = ck_conv_desc()
        d.rank = Int32(rank)
        d.batch = Int64(batch)
        d.in_channels = Int64(channels)
        d.out_channels = Int64(channels)
        d.groups = 1
        func fill(_ v: [Int], _ def: Int) -> (Int64, Int64, Int64) {
            let x = (0..<3).map { $0 < v.count ? Int64(v[$0]) : Int64(def) }
            return (x[0], x[1], x[2])
        }
        d.in_size = fill(inSpatial, 1); d.out_size = fill(outSpatial, 1); d.kernel = fill(pool, 1)
        d.stride = fill(strides, 1); d.dilation = (1, 1, 1); d.pad = fill((0..<rank).map { pads[2 * $0] }, 0)
        return d
    }

    /// Input positions (flat spatial index) of output window `o`.
    func window(_ o: [Int], _ spatial: [Int]) -> [Int] {
        var idx: [Int] = [0]
        for a in 0..<rank {
            let lo = max(o[a] * strides[a] - pads[2 * a], 0), hi = min(o[a] * strides[a] - pads[2 * a] + pool[a], spatial[a])
            idx = idx.flatMap { base in (lo..<max(lo, hi)).map { base * spatial[a] + $0 } }
        }
        return idx
    }
}

private func spatialPositions(_ s: [Int]) -> [[Int]] {
    var res: [[Int]] = [[]]
    for d in s { res = res.flatMap { p in (0..<d).map { p + [$0] } } }
    return res
}

/// Reference: calls body(batch, outFlat, window input flats).
private func forEachWindow(_ g: PoolWindow, n: Int, spatial: [Int], out: [Int], _ body: (Int, Int, [Int]) -> Void) {
    for b in 0..<n {
        for (o, pos) in spatialPositions(out).enumerated() { body(b, o, g.window(pos, spatial)) }
    }
}

private func poolShape(_ ctx: ShapeContext) throws -> (PoolWindow, [Int]) {
    let x = ctx.inputs[0]
    guard x.dtype == .f32, x.rank >= 3 else { throw ctx.fail("expects an f32 input [N, *spatial, C] of rank 3 to 5, got \(x)") }
    let rank = x.rank - 2
    let spatial = Array(x.shape[1..<(1 + rank)])
    guard spatial.allSatisfy({ $0 != TensorType.unknown }) else { throw ctx.fail("needs known spatial sizes, got \(x)") }
    let g = try PoolWindow(ctx.attrs, rank: rank, op: ctx.op)
    return (g, spatial)
}

/// One call of pooling kernel `op` (0 max, 1 avg, 2 max backward, 3 avg backward).
private func poolCall(_ ctx: LoweringContext, _ op: Int32, isa: ck_isa? = nil, input: TensorType, output: TensorType,
                      _ operands: [KernelOperand]) throws -> KernelCall {
    let rank = input.rank - 2
    let g = try PoolWindow(ctx.node.attrs, rank: rank, op: ctx.node.op)
    let desc = g.desc(batch: input.shape[0], inSpatial: Array(input.shape[1..<(1 + rank)]),
                      outSpatial: Array(output.shape[1..<(1 + rank)]), channels: input.shape.last!)
    return try ctx.call(CK_FAMILY_POOL, op: op, isa: isa, params: desc, operands)
}

private let poolCost: CostRule = { ins, out, attrs in
    // An estimate for reports: wrapping products never trap on hostile attributes.
    let window = ((try? attrs.ints("pool")) ?? [1]).reduce(1, &*)
    return Cost(flops: elementCount(out) &* window, bytes: (elementCount(ins[0]) + elementCount(out)) * 4)
}

let poolOps: [OpDef] = [
    OpDef("max_pool", arity: .exactly(1),
          shape: { ctx in
              let (g, spatial) = try poolShape(ctx)
              let x = ctx.inputs[0]
              return .f32([x.shape[0]] + (try g.out(spatial, op: ctx.op)) + [x.shape.last!])
          },
          differentiability: .vjp { b, args, grad in [try b.emit("max_pool_backward", [args.inputs[0], grad], args.attrs)] },
          reference: { ctx in
              let x = ctx.inputs[0]
              let rank = x.shape.count - 2
              let g = try PoolWindow(ctx.attrs, rank: rank, op: "max_pool")
              let spatial = Array(x.shape[1..<(1 + rank)]), out = Array(ctx.type.shape[1..<(1 + rank)])
              let c = x.shape.last!, S = spatial.reduce(1, *), P = out.reduce(1, *)
              var y = [Double](repeating: -.infinity, count: ctx.type.shape.reduce(1, *))
              forEachWindow(g, n: x.shape[0], spatial: spatial, out: out) { b, o, win in
                  for ch in 0..<c { for i in win { let v = x.data[(b * S + i) * c + ch]; if v > y[(b * P + o) * c + ch] || v.isNaN { y[(b * P + o) * c + ch] = v } } }
              }
              return RefTensor(.f32, ctx.type.shape, y)
          },
          lowering: .kernel { ctx in
              try poolCall(ctx, 0, isa: ctx.isa, input: ctx.inputTypes[0], output: ctx.outputType, [.input(0), .output])
          },
          cost: poolCost),

    OpDef("avg_pool", arity: .exactly(1),
          shape: { ctx in
              let (g, spatial) = try poolShape(ctx)
              let x = ctx.inputs[0]
              return .f32([x.shape[0]] + (try g.out(spatial, op: ctx.op)) + [x.shape.last!])
          },
          differentiability: .vjp { b, args, grad in
              var attrs = args.attrs
              let xt = b.type(of: args.inputs[0])
              attrs["input_shape"] = .ints(Array(xt.shape[1..<(xt.rank - 1)]))
              return [try b.emit("avg_pool_backward", [grad], attrs)]
          },
          reference: { ctx in
              let x = ctx.inputs[0]
              let rank = x.shape.count - 2
              let g = try PoolWindow(ctx.attrs, rank: rank, op: "avg_pool")
              let spatial = Array(x.shape[1..<(1 + rank)]), out = Array(ctx.type.shape[1..<(1 + rank)])
              let c = x.shape.last!, S = spatial.reduce(1, *), P = out.reduce(1, *)
              var y = [Double](repeating: 0, count: ctx.type.shape.reduce(1, *))
              forEachWindow(g, n: x.shape[0], spatial: spatial, out: out) { b, o, win in
                  for ch in 0..<c {
                      y[(b * P + o) * c + ch] = win.reduce(0.0) { $0 + x.data[(b * S + $1) * c + ch] } / Double(max(win.count, 1))
                  }
              }
              return RefTensor(.f32, ctx.type.shape, y)
          },
          lowering: .kernel { ctx in
              try poolCall(ctx, 1, input: ctx.inputTypes[0], output: ctx.outputType, [.input(0), .output])
          },
          cost: poolCost),

    OpDef("max_pool_backward", arity: .exactly(2),
          shape: { ctx in
              let (g, spatial) = try poolShape(ctx)
              let x = ctx.inputs[0], dy = ctx.inputs[1]
              let want = TensorType.f32([x.shape[0]] + (try g.out(spatial, op: ctx.op)) + [x.shape.last!])
              guard dy.rank == want.rank, zip(dy.shape, want.shape).allSatisfy({ $0 == $1 || $0 == TensorType.unknown || $1 == TensorType.unknown }) else {
                  throw ctx.fail("expects dy of type \(want) for x \(x), got \(dy)")
              }
              if try ctx.attrs.bool("relu_mask", default: false), let a = (0..<g.rank).first(where: { g.strides[$0] < g.pool[$0] }) {
                  throw ctx.fail("with relu_mask needs windows that do not overlap, got stride \(g.strides[a]) < pool \(g.pool[a]) on axis \(a)")
              }
              return x
          },
          differentiability: .notDifferentiable(reason: "routes gradients to the window maxima; its own gradient is not needed for training"),
          reference: { ctx in
              let x = ctx.inputs[0], dy = ctx.inputs[1]
              let rank = x.shape.count - 2
              let g = try PoolWindow(ctx.attrs, rank: rank, op: "max_pool_backward")
              let spatial = Array(x.shape[1..<(1 + rank)]), out = Array(dy.shape[1..<(1 + rank)])
              let c = x.shape.last!, S = spatial.reduce(1, *), P = out.reduce(1, *)
              var dx = [Double](repeating: 0, count: x.data.count)
              forEachWindow(g, n: x.shape[0], spatial: spatial, out: out) { b, o, win in
                  for ch in 0..<c {
                      guard var arg = win.first else { continue }
                      for i in win.dropFirst() where x.data[(b * S + i) * c + ch] > x.data[(b * S + arg) * c + ch] { arg = i }
                      dx[(b * S + arg) * c + ch] += dy.data[(b * P + o) * c + ch]
                  }
              }
              // relu_mask: relu's gradient from its output x, applied after routing.
              if try ctx.attrs.bool("relu_mask", default: false) { for k in dx.indices where !(x.data[k] > 0) { dx[k] = 0 } }
              return RefTensor(.f32, x.shape, dx)
          },
          lowering: .kernel { ctx in
              try poolCall(ctx, try ctx.node.attrs.bool("relu_mask", default: false) ? 4 : 2, isa: ctx.isa, input: ctx.inputTypes[0], output: ctx.inputTypes[1],
                           [.input(0), .input(1), .output])
          },
          cost: poolCost)
        // With relu's gradient fused the kernel reads each window before writing it, so dx may take x's storage.
        .overwriting { node in (try? node.attrs.bool("relu_mask", default: false)) == true ? 0 : nil },

    OpDef("avg_pool_backward", arity: .exactly(1),
          shape: { ctx in
              let dy = ctx.inputs[0]
              guard dy.dtype == .f32, dy.rank >= 3 else { throw ctx.fail("expects f32 dy [N, *out, C], got \(dy)") }
              let rank = dy.rank - 2
              let g = try PoolWindow(ctx.attrs, rank: rank, op: ctx.op)
              let input = try ctx.attrs.ints("input_shape")
              guard input.count == rank, input.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }),
                    try g.out(input, op: ctx.op) == Array(dy.shape[1..<(1 + rank)]) else {
                  throw ctx.fail("input_shape \(input) does not pool to \(dy)")
              }
              return .f32([dy.shape[0]] + input + [dy.shape.last!])
          },
          differentiability: .vjp { b, args, grad in
              var attrs = args.attrs
              attrs["input_shape"] = nil
              return [try b.emit("avg_pool", [grad], attrs)]
          },
          reference: { ctx in
              let dy = ctx.inputs[0]
              let rank = dy.shape.count - 2
              let g = try PoolWindow(ctx.attrs, rank: rank, op: "avg_pool_backward")
              let spatial = Array(ctx.type.shape[1..<(1 + rank)]), out = Array(dy.shape[1..<(1 + rank)])
              let c = dy.shape.last!, S = spatial.reduce(1, *), P = out.reduce(1, *)
              var dx = [Double](repeating: 0, count: ctx.type.shape.reduce(1, *))
              forEachWindow(g, n: dy.shape[0], spatial: spatial, out: out) { b, o, win in
                  for ch in 0..<c { for i in win { dx[(b * S + i) * c + ch] += dy.data[(b * P + o) * c + ch] / Double(max(win.count, 1)) } }
              }
              return RefTensor(.f32, ctx.type.shape, dx)
          },
          lowering: .kernel { ctx in
              try poolCall(ctx, 3, input: ctx.outputType, output: ctx.inputTypes[0], [.input(0), .output])
          },
          cost: poolCost),
]
