import CKernels

/// gather(table, indices): rows of `table` picked by int32 `indices`, the
/// embedding lookup. scatter_add is its transpose (the table's gradient).
/// Out-of-range indices fail the run with a message; they never read outside
/// the table.
let gatherOps: [OpDef] = [
    OpDef("gather", arity: .exactly(2),
          shape: { ctx in
              try ctx.requireDType(0, [.f32])
              try ctx.requireDType(1, [.i32])
              guard ctx.inputs[0].rank >= 1 else { throw ctx.fail("expects a table of rank 1 or more, got \(ctx.inputs[0])") }
              return .f32(ctx.inputs[1].shape + ctx.inputs[0].shape.dropFirst())
          },
          differentiability: .vjp { b, args, g in
              let rows = b.type(of: args.inputs[0]).shape[0]
              return [try b.emit("scatter_add", [g, args.inputs[1]], ["rows": .int(rows)]), nil]
          },
          reference: { ctx in
              let table = ctx.inputs[0], idx = ctx.inputs[1]
              let width = table.shape.dropFirst().reduce(1, *), rows = table.shape[0]
              var out = [Double](repeating: 0, count: idx.count * width)
              for (i, r) in idx.data.enumerated() {
                  let row = Int(r)
                  guard row >= 0 && row < rows else {
                      throw IRError("gather: index \(row) is out of range [0, \(rows))")
                  }
                  for j in 0..<width { out[i * width + j] = table.data[row * width + j] }
              }
              return RefTensor(.f32, ctx.type.shape, out)
          },
          lowering: .kernel { ctx in
              let table = ctx.inputTypes[0]
              let rows = table.shape[0], width = table.shape.dropFirst().reduce(1, *)
              let params = ck_index_call(nidx: Int64(elementCount(ctx.inputTypes[1])), rows: Int64(rows), width: Int64(width))
              return try ctx.call(CK_FAMILY_GATHER, params: params, [.input(1), .input(0), .output])
          },
          cost: { ins, out, _ in Cost(flops: 0, bytes: (elementCount(ins[1]) + 2 * elementCount(out)) * 4) }),

    OpDef("scatter_add", arity: .exactly(2),
          shape: { ctx in
              try ctx.requireDType(0, [.f32])
              try ctx.requireDType(1, [.i32])
              let rows = try ctx.attrs.int("rows")
              let upd = ctx.inputs[0], idx = ctx.inputs[1]
              guard rows >= 0 && rows <= TensorType.maxDimension else { throw ctx.fail("rows must be in [0, \(TensorType.maxDimension)], got \(rows)") }
              guard upd.rank >= idx.rank, zip(upd.shape, idx.shape).allSatisfy({ $0 == $1 || $0 == TensorType.unknown || $1 == TensorType.unknown })
              else { throw ctx.fail("expects updates shaped like the indices plus row dimensions, got \(upd) and \(idx)") }
              return .f32([rows] + upd.shape.dropFirst(idx.rank))
          },
          differentiability: .vjp { b, args, g in [try b.emit("gather", [g, args.inputs[1]]), nil] },
          reference: { ctx in
              let upd = ctx.inputs[0], idx = ctx.inputs[1]
              let rows = ctx.type.shape[0], width = ctx.type.shape.dropFirst().reduce(1, *)
              var out = [Double](repeating: 0, count: rows * width)
              for (i, r) in idx.data.enumerated() {
                  let row = Int(r)
                  guard row >= 0 && row < rows else {
                      throw IRError("scatter_add: index \(row) is out of range [0, \(rows))")
                  }
                  for j in 0..<width { out[row * width + j] += upd.data[i * width + j] }
              }
              return RefTensor(.f32, ctx.type.shape, out)
          },
          lowering: .kernel { ctx in
              let rows = ctx.outputType.shape[0], width = ctx.outputType.shape.dropFirst().reduce(1, *)
              let params = ck_index_call(nidx: Int64(elementCount(ctx.inputTypes[1])), rows: Int64(rows), width: Int64(width))
              return try ctx.call(CK_FAMILY_SCATTER_ADD, params: params, [.input(1), .input(0), .output])
          },
          cost: { ins, out, _ in Cost(flops: elementCount(ins[0]), bytes: (elementCount(ins[0]) + elementCount(out)) * 4) }),
]
