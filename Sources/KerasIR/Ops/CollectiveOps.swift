import CKernels

/// Collectives across the processes of a distributed job (issue 15).
///
/// `allreduce_mean(x)`: every process's x replaced by the mean of x over the
/// processes — what a data-parallel step applies to its gradients before the
/// optimizer's update. Within one process it is the identity, which is its
/// reference (the oracle a single-process plan is checked against); its
/// kernel calls the hook the runtime registers (`ck_set_allreduce_hook`)
/// when a distribution is set, over its input's storage when that dies here
/// (element i of the mean depends on element i of x alone). The mean over
/// processes is linear with every process's weight 1/N, so its VJP is the
/// same mean of the cotangent.
///
/// `pack(x1, ..., xn)`: the inputs' elements end to end in one f32 vector —
/// the bucket one allreduce averages instead of one call per gradient
/// (AllreduceBucketing). Its inputs are blocks of its result, so the memory
/// planner has each input's producer write straight into its block when the
/// pack is the input's only reader, and the kernel copies only the rest.
let collectiveOps: [OpDef] = [
    OpDef("allreduce_mean", arity: .exactly(1),
          shape: { ctx in
              try ctx.requireDType(0, [.f32])
              return ctx.inputs[0]
          },
          differentiability: .vjp { b, _, g in [try b.allreduceMean(g)] },
          reference: { ctx in RefTensor(.f32, ctx.type.shape, ctx.inputs[0].data) },
          lowering: .kernel { ctx in
              try ctx.call(CK_FAMILY_COLLECTIVE, op: 0, params: ck_count_call(n: Int64(ctx.outCount)), [.input(0), .output])
          },
          cost: movementCost).writingInPlace(),
    OpDef("pack", arity: .atLeast(1),
          shape: { ctx in
              var total = 0
              for (i, t) in ctx.inputs.enumerated() {
                  guard t.dtype == .f32, let n = t.elementCount else {
                      throw ctx.fail("packs f32 tensors of known size, but input \(i) is \(t)")
                  }
                  total += n
              }
              return .f32([total])
          },
          differentiability: .vjp { b, args, g in
              try zip(args.inputs, packOffsets(args.inputs.map { b.type(of: $0) })).map { x, offset in
                  try b.emit("view", [g], ["offset": .int(offset), "shape": .ints(b.type(of: x).shape)])
              }
          },
          reference: { ctx in RefTensor(.f32, ctx.type.shape, ctx.inputs.flatMap(\.data)) },
          lowering: .kernels { ctx in
              try zip(ctx.inputTypes.indices, packOffsets(ctx.inputTypes)).filter { !ctx.placedInputs.contains($0.0) }.map { i, offset in
                  let n = ctx.inputTypes[i].elementCount!
                  return try copyCall(ctx, shape: [n], src: .input(i), srcStrides: [1], dst: .output(element: offset), dstStrides: [1],
                                      detail: " \(i + 1) of \(ctx.inputTypes.count)")
              }
          },
          cost: movementCost).placingInputs { _, types in packOffsets(types) },
]

/// Where each input of a pack starts in its result, in elements.
func packOffsets(_ types: [TensorType]) -> [Int] {
    var offsets: [Int] = [], total = 0
    for t in types {
        offsets.append(total)
        total += t.elementCount ?? 0
    }
    return offsets
}

extension GraphBuilder {
    /// x averaged over the processes of a distributed job (the identity on one).
    public func allreduceMean(_ x: Value) throws -> Value { try emit("allreduce_mean", [x]) }
}
