import CKernels

/// matmul(a, b) {transpose_a, transpose_b}: a is [..., M, K] (or [..., K, M]
/// when transposed), b is [K, N] (shared across the batch) or [..., K, N]
/// with the same leading dimensions as a.
private struct MatmulDims {
    var batch: [Int]
    var m: Int, k: Int, n: Int
    var bBatched: Bool
}

private func dimsAgree(_ x: Int, _ y: Int) -> Bool { x == y || x == TensorType.unknown || y == TensorType.unknown }

private func matmulDims(_ a: TensorType, _ b: TensorType, ta: Bool, tb: Bool) throws -> MatmulDims {
    guard a.rank >= 2, b.rank >= 2 else {
        throw ShapeError("matmul expects operands of rank 2 or more, got \(a) and \(b)")
    }
    let m = ta ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
    let ka = ta ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
    let kb = tb ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
    let n = tb ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
    guard dimsAgree(ka, kb) else {
        throw ShapeError("matmul expects inner dimensions to agree, got \(a) and \(b)" + (ta || tb ? " (transpose_a=\(ta), transpose_b=\(tb))" : ""))
    }
    let batchA = Array(a.shape.dropLast(2))
    var bBatched = false
    if b.rank > 2 {
        let batchB = Array(b.shape.dropLast(2))
        guard batchB.count == batchA.count, zip(batchA, batchB).allSatisfy(dimsAgree) else {
            throw ShapeError("matmul expects equal batch dimensions, got \(a) and \(b)")
        }
        bBatched = true
    }
    return MatmulDims(batch: batchA, m: m, k: ka == TensorType.unknown ? kb : ka, n: n, bBatched: bBatched)
}

private func flags(_ attrs: Attributes) throws -> (Bool, Bool) {
    (try attrs.bool("transpose_a", default: false), try attrs.bool("transpose_b", default: false))
}

let matmulOps: [OpDef] = [
    OpDef(
        "matmul", arity: .exactly(2),
        shape: { ctx in
            try ctx.requireDType(0, [.f32])
            try ctx.requireDType(1, [.f32])
            let (ta, tb) = try flags(ctx.attrs)
            let d = try matmulDims(ctx.inputs[0], ctx.inputs[1], ta: ta, tb: tb)
            return .f32(d.batch + [d.m, d.n])
        },
        differentiability: .vjp { bld, args, g in
            let (ta, tb) = try flags(args.attrs)
            let a = args.inputs[0], b = args.inputs[1]
            let at = bld.type(of: a), bt = bld.type(of: b)
            // With A = op(a), B = op(b): dA = G B^T, dB = A^T G.
            let da: Value
            if !ta {
                da = try bld.matmul(g, b, transposeB: !tb)
            } else if bt.rank == 2 && at.rank > 2 {
                // dA^T with a shared b: transpose the last two axes of G B^T.
                var perm = Array(0..<at.rank)
                perm.swapAt(at.rank - 1, at.rank - 2)
                da = try bld.transpose(bld.matmul(g, b, transposeB: !tb), perm)
            } else {
                da = try bld.matmul(b, g, transposeA: tb, transposeB: true)
            }
            let db: Value
            if bt.rank == 2 && at.rank > 2 {
                // b is shared across the batch: fold the batch into the rows.
                if !ta {
                    let k = at.shape[at.rank - 1], n = bld.type(of: g).shape.last!
                    let a2 = try bld.reshape(a, [-1, k]), g2 = try bld.reshape(g, [-1, n])
                    db = tb ? try bld.matmul(g2, a2, transposeA: true) : try bld.matmul(a2, g2, transposeA: true)
                } else {
                    let batched = tb ? try bld.matmul(g, a, transposeA: true, transposeB: true)
                                     : try bld.matmul(a, g)
                    db = try bld.reduceSum(batched, axes: Array(0..<(at.rank - 2)))
                }
            } else {
                db = tb ? try bld.matmul(g, a, transposeA: true, transposeB: ta)
                        : try bld.matmul(a, g, transposeA: !ta)
            }
            return [da, db]
        },
        reference: { ctx in
            let (ta, tb) = try flags(ctx.attrs)
            let a = ctx.inputs[0], b = ctx.inputs[1]
            let d = try matmulDims(a.type, b.type, ta: ta, tb: tb)
            let batch = d.batch.reduce(1, *)
            let lda = a.shape.last!, ldb = b.shape.last!
            var out = [Double](repeating: 0, count: batch * d.m * d.n)
            for p in 0..<batch {
                let ao = p * d.m * d.k, bo = d.bBatched ? p * d.k * d.n : 0
                for i in 0..<d.m {
                    for j in 0..<d.n {
                        var acc = 0.0
                        for q in 0..<d.k {
                            let av = ta ? a.data[ao + q * lda + i] : a.data[ao + i * lda + q]
                            let bv = tb ? b.data[bo + j * ldb + q] : b.data[bo + q * ldb + j]
                            acc += av * bv
                        }
                        out[(p * d.m + i) * d.n + j] = acc
                    }
                }
            }
            return RefTensor(.f32, ctx.type.shape, out)
        },
        lowering: .kernel { ctx in
            let (ta, tb) = try flags(ctx.node.attrs)
            let d = try matmulDims(ctx.inputTypes[0], ctx.inputTypes[1], ta: ta, tb: tb)
            let batch = d.batch.reduce(1, *)
            var p = ck_gemm_call()
            p.trans_a = ta ? 1 : 0
            p.trans_b = tb ? 1 : 0
            p.m = Int64(d.m); p.n = Int64(d.n); p.k = Int64(d.k)
            p.alpha = 1; p.beta = 0
            p.lda = Int64(ctx.inputTypes[0].shape.last!)
            p.ldb = Int64(ctx.inputTypes[1].shape.last!)
            p.ldc = Int64(d.n)
            p.batch = Int64(batch)
            p.stride_a = Int64(d.m * d.k); p.stride_b = Int64(d.bBatched ? d.k * d.n : 0); p.stride_c = Int64(d.m * d.n)
            return try gemmCall(ctx, p, [.input(0), .input(1), .output], detail: batch > 1 ? " x\(batch)" : "")
        },
        cost: { ins, out, attrs in
            let ta = (try? attrs.bool("transpose_a", default: false)) ?? false
            let a = ins[0].shape.map { Swift.max($0, 1) }
            let k = ta ? a[a.count - 2] : a[a.count - 1]
            return Cost(flops: 2 * elementCount(out) * k,
                        bytes: (elementCount(ins[0]) + elementCount(ins[1]) + elementCount(out)) * 4)
        }),
]

/// A GEMM call, on the table row of the micro-tile a product of p.m rows
/// runs. Operands: a, b, c, then bias, residual, accumulate_into and the
/// run-time alpha source, absent when not given.
func gemmCall(_ ctx: LoweringContext, _ p: ck_gemm_call, _ operands: [KernelOperand], detail: String = "") throws -> KernelCall {
    var mr: Int32 = 1, nr: Int32 = 0, kc: Int32 = 0
    if ctx.isa != CK_ISA_REF { ck_f32_gemm_tile_for_rows(ctx.isa, p.m, &mr, &nr, &kc) }
    let all = operands + Array(repeating: KernelOperand.absent, count: Swift.max(0, 7 - operands.count))
    return try ctx.call(CK_FAMILY_GEMM, isa: ctx.isa, tile: mr, params: p, all, detail: detail)
}
