import CKernels

/// Convolution, channels-last: x [N, *spatial, C], w [*kernel, C/groups, OC]
/// (Keras's layout), y [N, *out, OC], with attributes strides, dilation,
/// pads ([before, after] per spatial axis) and groups: a ConvGeometry, which
/// layers build and the ops read back. The backward ops are each other's
/// VJPs, so gradients of gradients stay in the same three ops.
public struct ConvGeometry: Equatable, Sendable {
    public var rank: Int
    public var strides: [Int], dilation: [Int], pads: [Int], groups: Int

    /// The geometry of a convolution over `strides.count` spatial axes; the ops' shape rules check it.
    public init(strides: [Int], dilation: [Int], pads: [Int], groups: Int = 1) {
        rank = strides.count
        self.strides = strides; self.dilation = dilation; self.pads = pads; self.groups = groups
    }

    init(_ attrs: Attributes, rank: Int, op: String) throws {
        self.rank = rank
        strides = try attrs.ints("strides", default: [Int](repeating: 1, count: rank))
        dilation = try attrs.ints("dilation", default: [Int](repeating: 1, count: rank))
        pads = try attrs.ints("pads", default: [Int](repeating: 0, count: 2 * rank))
        groups = try attrs.int("groups", default: 1)
        guard rank >= 1 && rank <= 3 else { throw ShapeError("\(op) supports 1 to 3 spatial dimensions, got \(rank)") }
        guard strides.count == rank, dilation.count == rank, pads.count == 2 * rank else {
            throw ShapeError("\(op) expects \(rank) strides and dilations and \(2 * rank) pads, got \(strides), \(dilation), \(pads)")
        }
        guard strides.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }), dilation.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }),
              pads.allSatisfy({ $0 >= 0 && $0 <= TensorType.maxDimension }), groups >= 1, groups <= TensorType.maxDimension else {
            throw ShapeError("\(op) strides \(strides) and dilation \(dilation) must be positive, pads \(pads) non-negative, groups \(groups) positive")
        }
    }

    func outSize(_ input: Int, _ kernel: Int, axis i: Int, op: String) throws -> Int {
        let eff = (kernel - 1) * dilation[i] + 1
        let padded = input + pads[2 * i] + pads[2 * i + 1]
        guard padded >= eff else {
            throw ShapeError("\(op) kernel of effective size \(eff) is larger than the padded input (\(padded)) on spatial axis \(i)")
        }
        return (padded - eff) / strides[i] + 1
    }

    public var attrs: Attributes {
        ["strides": .ints(strides), "dilation": .ints(dilation), "pads": .ints(pads), "groups": .int(groups)]
    }

    func desc(batch: Int, inSpatial: [Int], outSpatial: [Int], kernel: [Int], inChannels: Int, outChannels: Int) -> ck_conv_desc {
        var d = ck_conv_desc()
        d.rank = Int32(rank)
        d.batch = Int64(batch)
        d.in_channels = Int64(inChannels)
        d.out_channels = Int64(outChannels)
        d.groups = Int64(groups)
        func fill(_ v: [Int], _ def: Int) -> (Int64, Int64, Int64) {
            let x = (0..<3).map { $0 < v.count ? Int64(v[$0]) : Int64(def) }
            return (x[0], x[1], x[2])
        }
        d.in_size = fill(inSpatial, 1)
        d.out_size = fill(outSpatial, 1)
        d.kernel = fill(kernel, 1)
        d.stride = fill(strides, 1)
        d.dilation = fill(dilation, 1)
        d.pad = fill((0..<rank).map { pads[2 * $0] }, 0)
        return d
    }
}

private let U = TensorType.unknown

/// Checks x [N, *s, C] and w [*k, C/g, OC]; returns (rank, spatial, kernel, C, OC).
func checkConvOperands(_ x: TensorType, _ w: TensorType, op: String, groupsAttr: Attributes) throws -> (Int, [Int], [Int], Int, Int) {
    guard x.dtype == .f32, w.dtype == .f32 else { throw ShapeError("\(op) expects f32 operands, got \(x) and \(w)") }
    let rank = x.rank - 2
    guard rank >= 1, w.rank == rank + 2 else {
        throw ShapeError("\(op) expects an input of rank 3 to 5 and a kernel of the same rank, got \(x) and \(w)")
    }
    let spatial = Array(x.shape[1..<(1 + rank)]), kernel = Array(w.shape[0..<rank])
    guard spatial.allSatisfy({ $0 != U }), kernel.allSatisfy({ $0 != U }) else {
        throw ShapeError("\(op) needs known spatial and kernel sizes, got \(x) and \(w)")
    }
    let groups = try groupsAttr.int("groups", default: 1)
    let c = x.shape.last!, cg = w.shape[rank], oc = w.shape[rank + 1]
    guard c != U, groups >= 1, groups <= TensorType.maxDimension, c == cg * groups, oc % groups == 0 else {
        throw ShapeError("\(op) expects input channels = kernel input channels x groups and output channels divisible by groups, got \(x), \(w) and groups=\(groups)")
    }
    return (rank, spatial, kernel, c, oc)
}

func convFlops(_ n: Int, _ outSpatial: [Int], _ oc: Int, _ kernel: [Int], _ cg: Int) -> Int {
    // An estimate for reports: wrapping products never trap on huge shapes.
    2 &* max(n, 1) &* outSpatial.reduce(1, &*) &* oc &* kernel.reduce(1, &*) &* cg
}

// MARK: - Reference (double precision, direct loops)

struct RefConv {
    let g: ConvGeometry
    let n: Int, spatial: [Int], out: [Int], kernel: [Int], c: Int, oc: Int

    var cg: Int { c / g.groups }
    var ocg: Int { oc / g.groups }

    func positions(_ s: [Int]) -> [[Int]] {
        var res: [[Int]] = [[]]
        for d in s { res = res.flatMap { p in (0..<d).map { p + [$0] } } }
        return res
    }

    /// For each (output position, tap), the input position or nil (padding).
    func source(_ o: [Int], _ k: [Int]) -> [Int]? {
        var i: [Int] = []
        for a in 0..<g.rank {
            let v = o[a] * g.strides[a] + k[a] * g.dilation[a] - g.pads[2 * a]
            if v < 0 || v >= spatial[a] { return nil }
            i.append(v)
        }
        return i
    }

    func flat(_ pos: [Int], _ sizes: [Int]) -> Int { pos.enumerated().reduce(0) { $0 * sizes[$1.offset] + $1.element } }

    /// Calls body(n, outFlat, inFlat, tapFlat) for every valid (output, tap) pair.
    func forEachPair(_ body: (Int, Int, Int, Int) -> Void) {
        let outs = positions(out), taps = positions(kernel)
        for b in 0..<n {
            for o in outs {
                for (ti, k) in taps.enumerated() {
                    guard let i = source(o, k) else { continue }
                    body(b, flat(o, out), flat(i, spatial), ti)
                }
            }
        }
    }

    func forward(_ x: [Double], _ w: [Double]) -> [Double] {
        let P = out.reduce(1, *), S = spatial.reduce(1, *)
        var y = [Double](repeating: 0, count: n * P * oc)
        forEachPair { b, o, i, t in
            for ocx in 0..<oc {
                let grp = ocx / ocg
                var acc = 0.0
                for cx in 0..<cg { acc += x[(b * S + i) * c + grp * cg + cx] * w[(t * cg + cx) * oc + ocx] }
                y[(b * P + o) * oc + ocx] += acc
            }
        }
        return y
    }

    func backwardData(_ dy: [Double], _ w: [Double]) -> [Double] {
        let P = out.reduce(1, *), S = spatial.reduce(1, *)
        var dx = [Double](repeating: 0, count: n * S * c)
        forEachPair { b, o, i, t in
            for cx in 0..<c {
                let grp = cx / cg, cc = cx % cg
                var acc = 0.0
                for k in 0..<ocg { acc += dy[(b * P + o) * oc + grp * ocg + k] * w[(t * cg + cc) * oc + grp * ocg + k] }
                dx[(b * S + i) * c + cx] += acc
            }
        }
        return dx
    }

    func backwardFilter(_ x: [Double], _ dy: [Double]) -> [Double] {
        let P = out.reduce(1, *), S = spatial.reduce(1, *)
        var dw = [Double](repeating: 0, count: kernel.reduce(1, *) * cg * oc)
        forEachPair { b, o, i, t in
            for ocx in 0..<oc {
                let grp = ocx / ocg
                let d = dy[(b * P + o) * oc + ocx]
                for cx in 0..<cg { dw[(t * cg + cx) * oc + ocx] += x[(b * S + i) * c + grp * cg + cx] * d }
            }
        }
        return dw
    }
}

// MARK: - Ops

/// One call of a convolution-family kernel (forward, backward-data and
/// backward-filter share the operands: two inputs, the output, then a
/// forward epilogue's bias and residual).
func convCall(_ ctx: LoweringContext, _ op: Int32, _ d: ck_conv_desc, bias: KernelOperand = .absent, residual: KernelOperand = .absent,
              epilogue: String = "") throws -> KernelCall {
    try ctx.call(CK_FAMILY_CONV, op: op, isa: ctx.isa, params: d, [.input(0), .input(1), .output, bias, residual], detail: epilogue)
}

let convOps: [OpDef] = [
    OpDef("conv", arity: .exactly(2),
          shape: { ctx in
              let (rank, spatial, kernel, _, oc) = try checkConvOperands(ctx.inputs[0], ctx.inputs[1], op: ctx.op, groupsAttr: ctx.attrs)
              let g = try ConvGeometry(ctx.attrs, rank: rank, op: ctx.op)
              let out = try (0..<rank).map { try g.outSize(spatial[$0], kernel[$0], axis: $0, op: ctx.op) }
              return .f32([ctx.inputs[0].shape[0]] + out + [oc])
          },
          differentiability: .vjp { b, args, grad in
              let x = args.inputs[0], w = args.inputs[1]
              let xt = b.type(of: x), wt = b.type(of: w)
              let rank = xt.rank - 2
              var bd = args.attrs
              bd["input_shape"] = .ints(Array(xt.shape[1..<(1 + rank)]))
              var bf = args.attrs
              bf["kernel"] = .ints(Array(wt.shape[0..<rank]))
              return [try b.emit("conv_backward_data", [grad, w], bd), try b.emit("conv_backward_filter", [x, grad], bf)]
          },
          reference: { ctx in
              let x = ctx.inputs[0], w = ctx.inputs[1]
              let rank = x.shape.count - 2
              let g = try ConvGeometry(ctx.attrs, rank: rank, op: "conv")
              let r = RefConv(g: g, n: x.shape[0], spatial: Array(x.shape[1..<(1 + rank)]), out: Array(ctx.type.shape[1..<(1 + rank)]),
                              kernel: Array(w.shape[0..<rank]), c: x.shape.last!, oc: w.shape.last!)
              return RefTensor(.f32, ctx.type.shape, r.forward(x.data, w.data))
          },
          lowering: .kernel { ctx in
              let xt = ctx.inputTypes[0], wt = ctx.inputTypes[1], yt = ctx.outputType
              let rank = xt.rank - 2
              let g = try ConvGeometry(ctx.node.attrs, rank: rank, op: "conv")
              let d = g.desc(batch: xt.shape[0], inSpatial: Array(xt.shape[1..<(1 + rank)]), outSpatial: Array(yt.shape[1..<(1 + rank)]),
                             kernel: Array(wt.shape[0..<rank]), inChannels: xt.shape.last!, outChannels: wt.shape.last!)
              return try convCall(ctx, 0, d)
          },
          cost: { ins, out, _ in
              let rank = ins[0].rank - 2
              let f = convFlops(out.shape[0], Array(out.shape[1..<(1 + rank)]), out.shape.last!, Array(ins[1].shape[0..<rank]), ins[1].shape[rank])
              return Cost(flops: f, bytes: (elementCount(ins[0]) + elementCount(ins[1]) + elementCount(out)) * 4)
          }),

    OpDef("conv_backward_data", arity: .exactly(2),
          shape: { ctx in
              let dy = ctx.inputs[0], w = ctx.inputs[1]
              let rank = dy.rank - 2
              guard rank >= 1, w.rank == rank + 2, dy.dtype == .f32, w.dtype == .f32 else {
                  throw ctx.fail("expects f32 dy [N, *out, OC] and kernel [*k, C/groups, OC] of matching rank, got \(dy) and \(w)")
              }
              let g = try ConvGeometry(ctx.attrs, rank: rank, op: ctx.op)
              let input = try ctx.attrs.ints("input_shape")
              guard input.count == rank, input.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }) else {
                  throw ctx.fail("input_shape \(input) must give \(rank) positive spatial sizes")
              }
              let kernel = Array(w.shape[0..<rank])
              for a in 0..<rank where dy.shape[1 + a] != (try g.outSize(input[a], kernel[a], axis: a, op: ctx.op)) {
                  throw ctx.fail("dy \(dy) does not match input spatial sizes \(input) with kernel \(kernel)")
              }
              guard dy.shape.last == w.shape.last, w.shape.last! % g.groups == 0 else {
                  throw ctx.fail("expects dy channels = kernel output channels, got \(dy) and \(w)")
              }
              return .f32([dy.shape[0]] + input + [w.shape[rank] * g.groups])
          },
          differentiability: .vjp { b, args, grad in
              let dy = args.inputs[0], w = args.inputs[1]
              let rank = b.type(of: dy).rank - 2
              var conv = args.attrs
              conv["input_shape"] = nil
              var bf = conv
              bf["kernel"] = .ints(Array(b.type(of: w).shape[0..<rank]))
              return [try b.emit("conv", [grad, w], conv), try b.emit("conv_backward_filter", [grad, dy], bf)]
          },
          reference: { ctx in
              let dy = ctx.inputs[0], w = ctx.inputs[1]
              let rank = dy.shape.count - 2
              let g = try ConvGeometry(ctx.attrs, rank: rank, op: "conv_backward_data")
              let r = RefConv(g: g, n: dy.shape[0], spatial: Array(ctx.type.shape[1..<(1 + rank)]), out: Array(dy.shape[1..<(1 + rank)]),
                              kernel: Array(w.shape[0..<rank]), c: ctx.type.shape.last!, oc: w.shape.last!)
              return RefTensor(.f32, ctx.type.shape, r.backwardData(dy.data, w.data))
          },
          lowering: .kernel { ctx in
              let dyt = ctx.inputTypes[0], wt = ctx.inputTypes[1], xt = ctx.outputType
              let rank = dyt.rank - 2
              let g = try ConvGeometry(ctx.node.attrs, rank: rank, op: "conv_backward_data")
              let d = g.desc(batch: xt.shape[0], inSpatial: Array(xt.shape[1..<(1 + rank)]), outSpatial: Array(dyt.shape[1..<(1 + rank)]),
                             kernel: Array(wt.shape[0..<rank]), inChannels: xt.shape.last!, outChannels: wt.shape.last!)
              return try convCall(ctx, 1, d)
          },
          cost: { ins, out, _ in
              let rank = ins[0].rank - 2
              let f = convFlops(ins[0].shape[0], Array(ins[0].shape[1..<(1 + rank)]), ins[0].shape.last!, Array(ins[1].shape[0..<rank]), ins[1].shape[rank])
              return Cost(flops: f, bytes: (elementCount(ins[0]) + elementCount(ins[1]) + elementCount(out)) * 4)
          }),

    OpDef("conv_backward_filter", arity: .exactly(2),
          shape: { ctx in
              let x = ctx.inputs[0], dy = ctx.inputs[1]
              let rank = x.rank - 2
              guard rank >= 1, dy.rank == rank + 2, x.dtype == .f32, dy.dtype == .f32 else {
                  throw ctx.fail("expects f32 x [N, *spatial, C] and dy [N, *out, OC] of matching rank, got \(x) and \(dy)")
              }
              let g = try ConvGeometry(ctx.attrs, rank: rank, op: ctx.op)
              let kernel = try ctx.attrs.ints("kernel")
              guard kernel.count == rank, kernel.allSatisfy({ $0 >= 1 && $0 <= TensorType.maxDimension }) else {
                  throw ctx.fail("kernel \(kernel) must give \(rank) positive sizes")
              }
              for a in 0..<rank {
                  guard x.shape[1 + a] != U, dy.shape[1 + a] == (try g.outSize(x.shape[1 + a], kernel[a], axis: a, op: ctx.op)) else {
                      throw ctx.fail("dy \(dy) does not match x \(x) with kernel \(kernel)")
                  }
              }
              let c = x.shape.last!, oc = dy.shape.last!
              guard c % g.groups == 0, oc % g.groups == 0 else { throw ctx.fail("channels \(c) and \(oc) must be divisible by groups \(g.groups)") }
              return .f32(kernel + [c / g.groups, oc])
          },
          differentiability: .vjp { b, args, grad in
              let x = args.inputs[0], dy = args.inputs[1]
              let xt = b.type(of: x)
              let rank = xt.rank - 2
              var conv = args.attrs
              conv["kernel"] = nil
              var bd = conv
              bd["input_shape"] = .ints(Array(xt.shape[1..<(1 + rank)]))
              return [try b.emit("conv_backward_data", [dy, grad], bd), try b.emit("conv", [x, grad], conv)]
          },
          reference: { ctx in
              let x = ctx.inputs[0], dy = ctx.inputs[1]
              let rank = x.shape.count - 2
              let g = try ConvGeometry(ctx.attrs, rank: rank, op: "conv_backward_filter")
              let r = RefConv(g: g, n: x.shape[0], spatial: Array(x.shape[1..<(1 + rank)]), out: Array(dy.shape[1..<(1 + rank)]),
                              kernel: Array(ctx.type.shape[0..<rank]), c: x.shape.last!, oc: dy.shape.last!)
              return RefTensor(.f32, ctx.type.shape, r.backwardFilter(x.data, dy.data))
          },
          lowering: .kernel { ctx in
              let xt = ctx.inputTypes[0], dyt = ctx.inputTypes[1], wt = ctx.outputType
              let rank = xt.rank - 2
              let g = try ConvGeometry(ctx.node.attrs, rank: rank, op: "conv_backward_filter")
              let d = g.desc(batch: xt.shape[0], inSpatial: Array(xt.shape[1..<(1 + rank)]), outSpatial: Array(dyt.shape[1..<(1 + rank)]),
                             kernel: Array(wt.shape[0..<rank]), inChannels: xt.shape.last!, outChannels: dyt.shape.last!)
              return try convCall(ctx, 2, d)
          },
          cost: { ins, out, _ in
              let rank = ins[0].rank - 2
              let f = convFlops(ins[1].shape[0], Array(ins[1].shape[1..<(1 + rank)]), ins[1].shape.last!, Array(out.shape[0..<rank]), out.shape[rank])
              return Cost(flops: f, bytes: (elementCount(ins[0]) + elementCount(ins[1]) + elementCount(out)) * 4)
          }),
]
